"""The shared training loop: every neural family trains and evaluates through it.

A family supplies a model and two small functions:
    forward(model, batch) -> logits [B, 2]                 (evaluation)
    compute_loss(model, batch) -> (loss, logits)           (training; default: CE on forward)
so regularised losses (R-Drop, SCL) change the loss, not the loop.

The loop runs on an `accelerate.Accelerator` (device.make_accelerator): device
placement, autocast and fp16 loss scaling (--precision), gradient
accumulation, DDP and gathering when torchrun started several processes,
torch.compile (--compile), and the state a checkpoint saves and --resume
restores. What stays ours: length-grouped batches sharded per process
(batching.BucketBatchSampler), early stopping on validation accuracy with
the best epoch's weights restored, and the guard against a non-finite loss.
"""

import errno
import math
import pickle
import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import device as devices, tracking
from .batching import BucketBatchSampler
from .errors import UserError
from .losses import cross_entropy_loss

LAST_CHECKPOINT = "last"  # checkpoint_dir/last: the state after the last finished epoch
PREVIOUS_CHECKPOINT = "previous"  # the one before, while `last` is being replaced


class NonFiniteLoss(UserError):
    """A NaN or infinite training loss (beyond the steps fp16 loss scaling skips by itself).

    A script prints it as one line and the MLflow run ends FAILED; a study prunes the
    trial and keeps the reason (search.py catches this class)."""

    def __init__(self, epoch: int, step: int, loss: float):
        self.epoch, self.step, self.loss = epoch, step, loss
        super().__init__(f"training loss became {loss} at epoch {epoch}, step {step}: the run cannot go on "
                         "(lower --lr, keep --grad-clip on, or try --precision fp32)")


@dataclass
class FitSettings:
    epochs: int
    lr: float
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    patience: int = 2
    warmup_ratio: float = 0.0
    grad_accumulation: int = 1
    precision: str = "auto"      # auto | fp32 | bf16 | fp16 (device.resolve_precision)
    compile: bool = False        # torch.compile the model
    progress: bool = True
    checkpoint_dir: str | None = None  # a checkpoint after every epoch under it (None: none)
    resume_checkpoint: bool = False    # go on from checkpoint_dir's last checkpoint

    @classmethod
    def from_config(cls, config, **overrides) -> "FitSettings":
        """The loop's settings from a family config (fields of the same names; the rest default),
        then `overrides` (the resolved precision, the run's checkpoint folder)."""
        names = {f for f in cls.__dataclass_fields__}
        values = {name: getattr(config, name) for name in names if hasattr(config, name)}
        return cls(**{**values, **overrides})


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
    train_seconds: float = 0.0   # over every session of the run (a resumed one included)
    precision: str = "fp32"      # what it trained in: predict with the same
    earlier_seconds: float = 0.0  # training time of the sessions before a --resume


def linear_schedule(optimizer, total_steps: int, warmup_ratio: float):
    """Linear warm-up to the peak rate, then linear decay to zero."""
    warmup = int(total_steps * warmup_ratio)

    def factor(step):
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def decay_groups(model, weight_decay: float) -> list[dict]:
    """AdamW's parameter groups: weight decay on matrices (linear, convolution, recurrent and
    embedding weights), none on biases and normalisation weights, which the BERT recipe and
    HF's Trainer exempt. The rule is by shape, nanoGPT's: a 1-d parameter is a bias or a norm's
    scale, so LayerNorm, RMSNorm and BatchNorm of any library are covered without a list."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not weight_decay:  # one group, as before there were two (checkpoints of then still resume)
        return [{"params": trainable, "weight_decay": 0.0}]
    return [{"params": [p for p in trainable if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0}]


def make_optimizer(model, settings: FitSettings, device: torch.device):
    """AdamW over the trainable weights (decay_groups); CUDA's fused kernel (one launch for all
    weights) on a GPU."""
    groups = [group for group in decay_groups(model, settings.weight_decay) if group["params"]]
    fused = device.type == "cuda" and all(p.is_floating_point() for group in groups for p in group["params"])
    return torch.optim.AdamW(groups, lr=settings.lr, **({"fused": True} if fused else {}))


def _shard_for_training(loader, accelerator):
    """The training loader as this process iterates it: each process its own slice of every
    length-grouped global batch (BucketBatchSampler.shard), batches placed on the device.

    accelerate's DataLoaderShard carries them so that gradient accumulation knows where an
    epoch ends; accelerate's own sharding is used only for other samplers."""
    from accelerate.data_loader import DataLoaderShard

    sampler = loader.batch_sampler
    if accelerator.num_processes > 1:
        if not isinstance(sampler, BucketBatchSampler):
            return accelerator.prepare_data_loader(loader)
        sampler = sampler.shard(accelerator.num_processes, accelerator.process_index)
    workers = {"num_workers": loader.num_workers, "pin_memory": loader.pin_memory}
    if loader.num_workers:
        workers["persistent_workers"] = loader.persistent_workers
    return DataLoaderShard(loader.dataset, device=accelerator.device, batch_sampler=sampler,
                           collate_fn=loader.collate_fn, _non_blocking=loader.pin_memory, **workers)


@torch.no_grad()
def predict(model, loader, forward, device=None, precision: str = "fp32", accelerator=None,
            all_processes: bool = False):
    """(probabilities of the positive class in dataset order, mean CE loss or nan).

    Batches carry "index" (their rows' dataset positions), so any sampler order works.
    precision: what the forward pass computes in (fp32 by default, as the logged model serves).
    all_processes (or fit's accelerator): every process of a torchrun run calls this; each
    predicts its shard (accelerate's, of the length-sorted batches) and gather_for_metrics
    joins them, dropping the reviews repeated to even out the last batch, so every process
    gets every review's probability exactly once. Otherwise this process predicts all.

    The model is put in eval mode: no dropout at evaluation.
    """
    if accelerator is None and (not all_processes or devices.world_size() == 1):
        # One process predicting alone (a served model too): plain PyTorch, no accelerate needed.
        device = torch.device(device) if device is not None else devices.detect_device("auto")
        batches = ({key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
                    for key, value in batch.items()} for batch in loader)
        precision = devices.resolve_precision(precision, device)
        autocast, gather = (lambda: devices.autocast(device, precision)), None
    else:
        from accelerate.data_loader import prepare_data_loader

        if accelerator is None:
            device = torch.device(device) if device is not None else devices.detect_device("auto")
            accelerator = devices.make_accelerator(device, devices.resolve_precision(precision, device))
        batches = prepare_data_loader(loader, device=accelerator.device, num_processes=accelerator.num_processes,
                                      process_index=accelerator.process_index, put_on_device=True,
                                      even_batches=True, non_blocking=loader.pin_memory)
        autocast = nullcontext if precision == "fp32" else accelerator.autocast
        gather = accelerator.gather_for_metrics if accelerator.num_processes > 1 else None
    was_training = model.training
    model.eval()
    logits, labels, order = [], [], []
    for batch in batches:
        with autocast():
            batch_logits = forward(model, batch).float()
        gathered = (batch_logits, batch["labels"], batch["index"])
        if gather:
            gathered = gather(gathered)
        for part, kept in zip(gathered, (logits, labels, order)):
            kept.append(part.cpu())
    model.train(was_training)
    size = len(loader.dataset)
    if not order:
        return np.empty(0, dtype=np.float64), float("nan")
    logits, labels, order = torch.cat(logits), torch.cat(labels), torch.cat(order).numpy()
    if len(order) != size or np.bincount(order, minlength=size).max() != 1:
        raise RuntimeError(f"predict gathered {len(order)} rows for {size} reviews")  # a sharding bug
    result = np.empty(size, dtype=np.float64)
    result[order] = torch.softmax(logits, dim=-1)[:, 1].double().numpy()
    loss = F.cross_entropy(logits, labels).item() if (labels >= 0).all() else float("nan")
    return result, loss


class _Progress:
    """What a checkpoint holds besides the model, optimiser, scheduler, scaler and RNG states
    (accelerate saves those): the epochs done, their metrics, early stopping's state and the
    best epoch's weights. The sampler needs only the epoch: its order is a function of
    seed and epoch, and checkpoints fall between epochs."""

    def __init__(self):
        self.epoch = 0
        self.history: list[dict] = []
        self.best_val_acc = -1.0
        self.best_epoch = 0
        self.best_state: dict | None = None
        self.stale = 0
        self.train_seconds = 0.0

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


def _own(accelerator, model):
    """The model itself inside what accelerate made of it (DDP, torch.compile; autocast kept)."""
    return accelerator.unwrap_model(model, keep_torch_compile=False)


@contextmanager
def _in_fp32(accelerator, model):
    """The block runs the prepared model without the autocast accelerate wrapped its forward in:
    validation in fp32, as the test predictions and the logged model compute, so the accuracy
    that picks the best epoch is the one val_predictions.csv and the served model reproduce."""
    own = _own(accelerator, model)
    wrapped, original = own.__dict__.get("forward"), own.__dict__.get("_original_forward")
    if wrapped is None or original is None:  # fp32 training: nothing was wrapped
        yield
        return
    own.forward = original
    try:
        yield
    finally:
        own.forward = wrapped


def _trained_weights_hooks(accelerator) -> None:
    """Checkpoints hold the model's own state_dict (for a PEFT model wrapped in
    encoders.loading.TrainedWeights: the adapter and head alone), saved by the main process:
    accelerate would save the DDP wrapper's, where that override is not consulted."""
    def save(models, weights, output_dir):
        if accelerator.is_main_process:
            states = {str(i): _own(accelerator, model).state_dict() for i, model in enumerate(models)}
            torch.save({key: {name: value.detach().cpu() for name, value in state.items()}
                        for key, state in states.items()}, Path(output_dir) / "trained_weights.pt")
        weights.clear()

    def load(models, input_dir):
        states = torch.load(Path(input_dir) / "trained_weights.pt", map_location="cpu", weights_only=True)
        for i, model in enumerate(models):
            _own(accelerator, model).load_state_dict(states[str(i)])
        models.clear()

    accelerator.register_save_state_pre_hook(save)
    accelerator.register_load_state_pre_hook(load)


def save_checkpoint(accelerator, folder: Path) -> None:
    """accelerator.save_state into a fresh folder, which becomes `last` only once complete; the
    checkpoint it replaces becomes `previous` (the one before that is removed). A process killed
    at any moment (kill -9 in the middle of the write, or between the renames) leaves a complete
    checkpoint to resume from, and a damaged `last` leaves `previous`."""
    partial, last, previous = (folder / name for name in (f"{LAST_CHECKPOINT}.partial", LAST_CHECKPOINT,
                                                          PREVIOUS_CHECKPOINT))
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(partial))
    except (OSError, RuntimeError) as error:
        if not is_disk_full(error):
            raise
        if accelerator.is_main_process:  # a full disk: the run fails, the checkpoints before stay
            shutil.rmtree(partial, ignore_errors=True)
        needed = sum(f.stat().st_size for f in last.rglob("*") if f.is_file()) if last.is_dir() else 0
        raise UserError(f"cannot write the checkpoint {partial} (no space left on the device); "
                        f"{free_space_note(folder)}" + (f", a checkpoint needs about {needed / 1e6:.0f} MB"
                                                        if needed else "")
                        + f"; the last complete checkpoint stays in {folder}") from None
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if last.exists():
            if previous.exists():
                shutil.rmtree(previous)
            last.rename(previous)
        partial.rename(last)
    accelerator.wait_for_everyone()


def is_disk_full(error: BaseException) -> bool:
    """Whether a write failed for want of space: ENOSPC or EDQUOT from the OS, or the message
    torch.save (PytorchStreamWriter), safetensors or SQLite give for it."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error).lower()
    return any(sign in text for sign in ("no space left", "disk is full", "pytorchstreamwriter failed writing",
                                         "file write failed"))


def free_space_note(folder: Path) -> str:
    """"N MB free on the filesystem of <folder>", for a message about a write that failed."""
    try:
        free = shutil.disk_usage(next(p for p in (folder, *folder.parents) if p.exists())).free
    except (OSError, StopIteration):
        return "cannot tell the free space there"
    return f"{free / 1e6:.0f} MB free on the filesystem of {folder}"


def has_checkpoint(folder) -> bool:
    return folder is not None and any((Path(folder) / name).is_dir() for name in (LAST_CHECKPOINT,
                                                                                 PREVIOUS_CHECKPOINT))


def load_checkpoint(accelerator, folder: Path) -> None:
    """The newest complete checkpoint under folder, restored; a damaged one is named in one line
    and the one before it (if there is one) is used instead."""
    candidates = [folder / name for name in (LAST_CHECKPOINT, PREVIOUS_CHECKPOINT) if (folder / name).is_dir()]
    for index, candidate in enumerate(candidates):
        try:
            accelerator.load_state(str(candidate))
            return
        except (EOFError, OSError, RuntimeError, pickle.UnpicklingError, KeyError) as error:
            # a truncated or corrupted file, as torch.load and safetensors report one
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            if index + 1 < len(candidates):
                if accelerator.is_main_process:
                    print(f"checkpoint {candidate} is damaged ({first}); resuming from {candidates[index + 1]}",
                          flush=True)
                continue
            raise UserError(f"--resume: the checkpoint {candidate} is damaged ({first}) and there is none "
                            "before it; start the run again") from None


def check_finite(loss, epoch: int, step: int, accelerator) -> float:
    """The step's loss as a float; NonFiniteLoss (on every process at once) if any is NaN/Inf."""
    value = loss.detach().float()
    if accelerator.num_processes > 1:  # all must stop together, or the others wait in backward
        bad = accelerator.reduce((~torch.isfinite(value)).float().reshape(1), reduction="sum").item()
        number = value.item()
        if bad:
            raise NonFiniteLoss(epoch, step, number if not math.isfinite(number) else "nan on another process")
        return number
    number = value.item()
    if not math.isfinite(number):
        raise NonFiniteLoss(epoch, step, number)
    return number


def _plain_module(model):
    """The model as the caller passed it: accelerate's autocast wrapper on forward removed."""
    forward = model.__dict__.get("forward")
    if forward is not None and getattr(forward, "__func__", None) is type(model).forward:
        del model.forward  # accelerate leaves the class's own forward as an instance attribute
    return model


def fit(model, train_loader, val_loader, settings: FitSettings, device, forward: Callable,
        compute_loss: Callable | None = None, on_epoch: Callable | None = None,
        optimizer=None) -> FitResult:
    """Train with early stopping on validation accuracy; the best epoch's weights are restored.

    Each epoch ends with a checkpoint when settings.checkpoint_dir is set, before
    on_epoch(epoch, metrics, last) runs (so a run stopped there resumes after that epoch);
    last is true when no epoch follows (the last one, or early stopping ends here)."""
    compute_loss = compute_loss or cross_entropy_loss(forward)
    device = torch.device(device)
    precision = devices.resolve_precision(settings.precision, device, recurrent=devices.has_lstm(model))
    accelerator = devices.make_accelerator(device, precision, settings.grad_accumulation, settings.compile)
    prepared = accelerator.prepare(model)
    optimizer = accelerator.prepare(optimizer or make_optimizer(model, settings, accelerator.device))
    train_shard = _shard_for_training(train_loader, accelerator)
    steps_per_epoch = math.ceil(len(train_shard) / settings.grad_accumulation)
    # Stepped by hand once per optimiser step: accelerate's wrapper would step it once per process.
    scheduler = linear_schedule(optimizer.optimizer, steps_per_epoch * settings.epochs, settings.warmup_ratio)
    val_labels = np.asarray(val_loader.dataset.labels)
    state = _Progress()
    accelerator.register_for_checkpointing(scheduler, state)
    _trained_weights_hooks(accelerator)
    folder = Path(settings.checkpoint_dir) if settings.checkpoint_dir else None
    earlier_seconds = 0.0
    if settings.resume_checkpoint:
        if not has_checkpoint(folder):
            raise UserError(f"--resume: no checkpoint in {folder}")
        load_checkpoint(accelerator, folder)
        earlier_seconds = state.train_seconds
        if accelerator.is_main_process:
            print(f"resumed after epoch {state.epoch} (best val_acc {state.best_val_acc:.4f} at epoch "
                  f"{state.best_epoch})", flush=True)
    session_start = time.perf_counter()
    main = accelerator.is_main_process
    for epoch in range(state.epoch + 1, settings.epochs + 1):
        if settings.patience and state.stale >= settings.patience:
            break  # a run resumed after the epoch that stopped it early
        epoch_start = time.perf_counter()
        train_shard.set_epoch(epoch)
        prepared.train()
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(train_shard, desc=f"epoch {epoch}/{settings.epochs}", disable=not (settings.progress and main),
                   mininterval=1.0, leave=False, dynamic_ncols=True)
        for step, batch in enumerate(bar, start=1):
            with accelerator.accumulate(prepared):
                with accelerator.autocast():
                    loss, logits = compute_loss(prepared, batch)
                loss_value = check_finite(loss, epoch, step, accelerator)
                accelerator.backward(loss)
                if accelerator.sync_gradients and settings.grad_clip:
                    accelerator.clip_grad_norm_(prepared.parameters(), settings.grad_clip)
                optimizer.step()
                if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            size = len(batch["labels"])
            loss_sum += loss_value * size
            correct += (logits.argmax(-1) == batch["labels"]).sum().item()
            seen += size
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
        bar.close()
        train_seconds = time.perf_counter() - epoch_start
        # Every process's sums: the epoch's metrics are over all the reviews, the same on each.
        totals = accelerator.reduce(torch.tensor([loss_sum, correct, seen], dtype=torch.float64,
                                                 device=accelerator.device), reduction="sum").tolist()
        with _in_fp32(accelerator, prepared):
            val_probs, val_loss = predict(prepared, val_loader, forward, accelerator=accelerator)
        val_acc = float(np.mean((val_probs >= 0.5) == val_labels))
        metrics = {"train_loss": totals[0] / max(1, totals[2]), "train_acc": totals[1] / max(1, totals[2]),
                   "val_loss": val_loss, "val_acc": val_acc,
                   "epoch_seconds": time.perf_counter() - epoch_start,
                   # training alone (no validation), per batch of this process: what precision,
                   # compile and batching change
                   "step_ms": 1000 * train_seconds / max(1, len(train_shard))}
        state.history.append(metrics)
        if main:
            print(f"epoch {epoch}: train_loss {metrics['train_loss']:.4f} train_acc {metrics['train_acc']:.4f} "
                  f"val_loss {val_loss:.4f} val_acc {val_acc:.4f} ({metrics['epoch_seconds']:.0f}s)", flush=True)
        # The snapshot is taken before on_epoch, so the weights kept are the
        # ones that scored val_acc, whatever a callback does next.
        if val_acc > state.best_val_acc:
            state.best_val_acc, state.best_epoch, state.stale = val_acc, epoch, 0
            state.best_state = {name: value.detach().to("cpu", copy=True)
                                for name, value in _own(accelerator, prepared).state_dict().items()}
        else:
            state.stale += 1
        state.epoch = epoch
        state.train_seconds = earlier_seconds + time.perf_counter() - session_start
        if folder is not None:
            save_checkpoint(accelerator, folder)
        stopping = bool(settings.patience) and state.stale >= settings.patience
        if on_epoch:
            on_epoch(epoch, metrics, epoch == settings.epochs or stopping)
        if stopping:
            if main:
                print(f"early stop: no val_acc gain for {state.stale} epochs", flush=True)
            break
    model = _plain_module(accelerator.unwrap_model(prepared, keep_fp32_wrapper=False, keep_torch_compile=False))
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    result = FitResult(best_epoch=state.best_epoch, best_val_acc=state.best_val_acc, history=state.history,
                       train_seconds=earlier_seconds + time.perf_counter() - session_start, precision=precision,
                       earlier_seconds=earlier_seconds)
    accelerator.free_memory()  # its references to the model and optimizer, then garbage and the device's cache
    return result


def fit_logged(model, train_loader, val_loader, settings: FitSettings, device, forward,
               compute_loss=None, on_epoch: Callable | None = None) -> FitResult:
    """fit() with each epoch's metrics logged to the active MLflow run (by the main process)
    before on_epoch (a search trial's report / prune) sees them."""

    def epoch_done(epoch, metrics, last):
        if devices.is_main_process():
            tracking.log_epoch(epoch, metrics)
        if on_epoch:
            on_epoch(epoch, metrics, last)

    return fit(model, train_loader, val_loader, settings, device, forward=forward,
               compute_loss=compute_loss, on_epoch=epoch_done)


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
