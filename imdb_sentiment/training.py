"""The shared training loop: every neural family trains and evaluates through it.

A family supplies a model and two small functions:
    forward(model, batch) -> logits [B, 2]                 (evaluation)
    compute_loss(model, batch) -> (loss, logits)           (training; default: CE on forward)
so regularised losses (R-Drop, SCL) change the loss, not the loop.
"""

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import tracking
from .device import autocast
from .losses import cross_entropy_loss


@dataclass
class FitSettings:
    epochs: int
    lr: float
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    patience: int = 2
    warmup_ratio: float = 0.0
    grad_accumulation: int = 1
    mixed_precision: bool = True
    progress: bool = True


    @classmethod
    def from_config(cls, config) -> "FitSettings":
        """The loop's settings from a family config (fields of the same names; the rest default)."""
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{name: getattr(config, name) for name in names if hasattr(config, name)})


@dataclass
class Outcome:
    """What a tracked run returns to its caller (a script, a search trial)."""
    run_id: str
    best_val_acc: float
    test_acc: float
    history: list


@dataclass
class FitResult:
    best_epoch: int
    best_val_acc: float
    history: list = field(default_factory=list)  # one dict of metrics per epoch
    train_seconds: float = 0.0


def _to_device(batch: dict, device) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def linear_schedule(optimizer, total_steps: int, warmup_ratio: float):
    """Linear warm-up to the peak rate, then linear decay to zero."""
    warmup = int(total_steps * warmup_ratio)

    def factor(step):
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.no_grad()
def predict(model, loader, forward, device, mixed_precision: bool = True):
    """(probabilities of the positive class in dataset order, mean CE loss or nan).

    Batches carry "index" (their rows' dataset positions), so any sampler order works.

    The model is put in eval mode: no dropout at evaluation.
    """
    was_training = model.training
    model.eval()
    order, probs, losses, count = [], [], 0.0, 0
    for batch in loader:
        batch_indices = batch["index"].tolist()
        batch = _to_device(batch, device)
        with autocast(device, mixed_precision):
            logits = forward(model, batch).float()
        probs.append(torch.softmax(logits, dim=-1)[:, 1].cpu())
        order.extend(batch_indices)
        if "labels" in batch and (batch["labels"] >= 0).all():
            losses += F.cross_entropy(logits, batch["labels"], reduction="sum").item()
            count += len(batch_indices)
    model.train(was_training)
    result = np.empty(len(order), dtype=np.float64)
    result[np.asarray(order, dtype=np.int64)] = torch.cat(probs).numpy() if probs else []
    return result, (losses / count if count else float("nan"))


def fit(model, train_loader, val_loader, settings: FitSettings, device, forward: Callable,
        compute_loss: Callable | None = None, on_epoch: Callable | None = None,
        optimizer=None) -> FitResult:
    """Train with early stopping on validation accuracy; the best epoch's weights are restored."""
    compute_loss = compute_loss or cross_entropy_loss(forward)
    model.to(device)
    if optimizer is None:
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(train_loader) / settings.grad_accumulation)
    scheduler = linear_schedule(optimizer, steps_per_epoch * settings.epochs, settings.warmup_ratio)
    val_labels = np.asarray(val_loader.dataset.labels)
    best = FitResult(best_epoch=0, best_val_acc=-1.0)
    best_state, stale = None, 0
    start = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        epoch_start = time.perf_counter()
        if hasattr(train_loader.batch_sampler, "set_epoch"):
            train_loader.batch_sampler.set_epoch(epoch)
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{settings.epochs}", disable=not settings.progress,
                   mininterval=1.0, leave=False, dynamic_ncols=True)
        optimizer.zero_grad(set_to_none=True)
        for step, batch in enumerate(bar, start=1):
            batch = _to_device(batch, device)
            with autocast(device, settings.mixed_precision):
                loss, logits = compute_loss(model, batch)
            (loss / settings.grad_accumulation).backward()
            if step % settings.grad_accumulation == 0 or step == len(train_loader):
                if settings.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            size = len(batch["labels"])
            loss_sum += loss.item() * size
            correct += (logits.argmax(-1) == batch["labels"]).sum().item()
            seen += size
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
        bar.close()
        val_probs, val_loss = predict(model, val_loader, forward, device, settings.mixed_precision)
        val_acc = float(np.mean((val_probs >= 0.5) == val_labels))
        metrics = {"train_loss": loss_sum / max(1, seen), "train_acc": correct / max(1, seen),
                   "val_loss": val_loss, "val_acc": val_acc,
                   "epoch_seconds": time.perf_counter() - epoch_start}
        best.history.append(metrics)
        print(f"epoch {epoch}: train_loss {metrics['train_loss']:.4f} train_acc {metrics['train_acc']:.4f} "
              f"val_loss {val_loss:.4f} val_acc {val_acc:.4f} ({metrics['epoch_seconds']:.0f}s)", flush=True)
        # The snapshot is taken before on_epoch, so the weights kept are the
        # ones that scored val_acc, whatever a callback does next.
        if val_acc > best.best_val_acc:
            best.best_val_acc, best.best_epoch, stale = val_acc, epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            stale += 1
        if on_epoch:
            on_epoch(epoch, metrics)
        if settings.patience and stale >= settings.patience:
            print(f"early stop: no val_acc gain for {stale} epochs", flush=True)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    best.train_seconds = time.perf_counter() - start
    return best


def fit_logged(model, train_loader, val_loader, settings: FitSettings, device, forward,
               compute_loss=None, on_epoch: Callable | None = None) -> FitResult:
    """fit() with each epoch's metrics logged to the active MLflow run before
    on_epoch (a search trial's report / prune) sees them."""

    def epoch_done(epoch, metrics):
        tracking.log_epoch(epoch, metrics)
        if on_epoch:
            on_epoch(epoch, metrics)

    return fit(model, train_loader, val_loader, settings, device, forward=forward,
               compute_loss=compute_loss, on_epoch=epoch_done)


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
