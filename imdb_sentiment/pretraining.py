"""Masked-LM pretraining of an encoder on the lab's own text: the mlm family (`make pretrain-minilm`).

    python train/mlm.py --model <folder> --max-steps 1500     # one MLflow run, its model `encoder`
    python train/bert.py --model runs:/<run id>/encoder       # fine-tune what it made

What it reads: the training split (the labelled reviews --val-fraction and --seed leave after
holding out the validation ones; not with --no-labeled) and the unlabelled reviews, less
--heldout of those, kept to measure the masked-LM loss on. Validation and test text never reach it. The ids of the labelled
reviews it read are saved with the encoder (pretraining.json), and a fine-tuning run whose
validation reviews are among them is refused (encoders/checkpoints.py).

How: reviews are cleaned as the encoder recipe cleans them, tokenised once and cut into windows of
--max-length tokens, each [CLS] ... [SEP]. Step s takes --batch-size windows in an order fixed by
the seed (a permutation per pass) and masks them with transformers' DataCollatorForLanguageModeling
(15%: 80% [MASK], 10% a random token, 10% kept) under a seed made of the run's seed and s, so a
resumed run masks and drops out exactly as an uninterrupted one. The prediction head runs only at
the masked positions (`masked_lm_loss`: HF's *ForMaskedLM project every position onto the
vocabulary, 30,522 wide for BERT, nearly as costly as MiniLM's six layers; the loss is the same).
Accelerate places the model, autocasts, and writes the checkpoints (model, AdamW, schedule, RNG,
and the step) every --checkpoint-every steps through training.save_checkpoint, so a killed run
goes on with --resume RUN_ID at most that many steps back.

The run logs train_loss, heldout_loss, heldout_perplexity, lr and tokens_per_second by step, and
at the end the encoder as an MLflow model named `encoder` (a pyfunc that fills [MASK] tokens; its
artifact is the save_pretrained folder a fine-tuning run loads), so it can be registered
(--register NAME) and named as models:/NAME/VERSION too.
"""

import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data, device as devices, paths, tracking
from .config import MlmConfig
from .encoders.checkpoints import ENCODER_MODEL_TYPE, ENCODER_NAME, TEXT_FILE
from .errors import UserError
from .families import model_label

FILL_MASK_FILE = Path(__file__).resolve().parent / "fill_mask_model.py"


class Windows:
    """Token windows in one int32 array (70,000 reviews are about 180,000 windows of 128: 90 MB, where
    lists of Python ints took several GB); windows[i] is window i's ids as a list."""

    def __init__(self, windows: list[list[int]], length: int):
        self.lengths = np.array([len(window) for window in windows], dtype=np.int32)
        self.ids = np.zeros((len(windows), length), dtype=np.int32)
        for row, window in enumerate(windows):
            self.ids[row, :len(window)] = window

    def extend(self, other: "Windows") -> "Windows":
        self.lengths = np.concatenate([self.lengths, other.lengths])
        self.ids = np.concatenate([self.ids, other.ids])
        return self

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i) -> list[int]:
        return self.ids[i, :self.lengths[i]].tolist()


@dataclass
class Text:
    """What a run pretrains on: token windows, and the held-out windows its loss is measured on."""
    windows: Windows
    heldout: Windows
    labeled_ids: list[str]      # the labelled reviews read (the training split's)
    unlabeled_count: int
    tokens: int                 # in the training windows, special tokens included
    data_sha256: str            # of the labelled and test files (data.load_splits)


def cut_windows(ids: list[int], length: int, cls_id: int, sep_id: int) -> list[list[int]]:
    """A review's token ids (no special tokens) as windows of at most `length`, each [CLS] ... [SEP];
    a last piece shorter than a quarter window joins nothing and is dropped unless it is the only one."""
    inner = length - 2
    pieces = [ids[start:start + inner] for start in range(0, max(1, len(ids)), inner)]
    if len(pieces) > 1 and len(pieces[-1]) < inner // 4:
        pieces.pop()
    return [[cls_id, *piece, sep_id] for piece in pieces]


def read_text(config: MlmConfig, tokenizer) -> Text:
    """The training split's reviews (unless --no-labeled) and the unlabelled ones, as windows.
    --heldout reviews chosen by the seed are held out: unlabelled ones, or training ones with
    --no-unlabeled."""
    from .encoders.tokens import clean_reviews

    splits = data.load_splits(config.data_dir, config.val_fraction, config.seed, config.limit)
    labeled = list(zip(splits.train["id"], splits.train["review"]))
    unlabeled = []
    if config.unlabeled:
        rows = data.unlabelled_reviews(config.data_dir, 2 * config.limit if config.limit else None)
        unlabeled = list(zip(rows["id"], rows["review"]))
    source = unlabeled or labeled
    if config.heldout >= len(source):
        raise UserError(f"--heldout {config.heldout}: only {len(source)} {'unlabelled' if unlabeled else 'training'} "
                        "reviews to hold out of; give fewer")
    held = set(np.random.default_rng(config.seed).permutation(len(source))[:config.heldout].tolist())
    kept = [row for i, row in enumerate(source) if i not in held]
    trained_labeled = (labeled if unlabeled else kept) if config.labeled else []

    def windows_of(rows, chunk: int = 2000):
        windows = Windows([], config.max_length)
        for start in range(0, len(rows), chunk):  # a chunk at a time: the tokenizer's lists stay small
            ids = tokenizer(clean_reviews([review for _, review in rows[start:start + chunk]]),
                            add_special_tokens=False, verbose=False, return_attention_mask=False,
                            return_token_type_ids=False)["input_ids"]
            windows.extend(Windows([window for review in ids for window in cut_windows(
                review, config.max_length, tokenizer.cls_token_id, tokenizer.sep_token_id)], config.max_length))
        return windows

    windows = windows_of(trained_labeled + (kept if unlabeled else []))
    return Text(windows, windows_of([source[i] for i in sorted(held)]), [str(i) for i, _ in trained_labeled],
                len(kept) if unlabeled else 0, int(windows.lengths.sum()), splits.sha256)


def batch_indices(step: int, batch_size: int, count: int, seed: int) -> np.ndarray:
    """The windows step `step` (0-based) trains on: consecutive slices of one seeded permutation
    per pass over the `count` windows, so any step's batch is known without replaying the ones before."""
    positions = np.arange(step * batch_size, (step + 1) * batch_size)
    passes = positions // count
    out = np.empty(batch_size, dtype=np.int64)
    for one in np.unique(passes):
        order = np.random.default_rng([seed, int(one)]).permutation(count)
        chosen = passes == one
        out[chosen] = order[positions[chosen] % count]
    return out


def _head(model):
    """The masked-LM head that maps hidden states to vocabulary logits, where it is one module that
    takes any leading shape (BERT's `cls`, RoBERTa's and DeBERTa's `lm_head`); None elsewhere."""
    for name in ("cls", "lm_head"):
        head = getattr(model, name, None)
        if head is not None:
            return head
    return None


def masked_lm_loss(model, batch):
    """Cross-entropy at the masked positions (labels != -100), the head run only there; the model's
    own full forward where the head is not one module (_head)."""
    import torch.nn.functional as F

    head = _head(model)
    if head is None:
        return model(**batch).loss
    base = getattr(model, model.base_model_prefix)
    hidden = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    masked = batch["labels"] != -100
    logits = head(hidden[masked])
    return F.cross_entropy(logits.float(), batch["labels"][masked])


class _Progress:
    """What a checkpoint holds besides what accelerate saves: the steps done, the time and tokens
    they took, and the training loss summed since the last measurement."""

    def __init__(self):
        self.step = 0
        self.train_seconds = 0.0
        self.tokens = 0
        self.loss_sum, self.loss_steps = 0.0, 0  # since the last measurement

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


def _load_masked_lm(name: str):
    from transformers import AutoModelForMaskedLM

    model, info = AutoModelForMaskedLM.from_pretrained(name, output_loading_info=True)
    fresh = [key for key in info.get("missing_keys", []) if "embeddings" not in key]
    if fresh:  # a checkpoint saved without its masked-LM head (all-MiniLM-L6-v2, a sentence encoder)
        print(f"note: {model_label(name)} has no masked-LM head weights ({len(fresh)} tensors): a new head is "
              "initialised (its decoder is the word embeddings)", flush=True)
    return model


def heldout_loss(model, accelerator, windows, collator, batch_size: int, seed: int) -> float:
    """The mean masked-LM loss over the held-out windows, masked the same way at every measurement."""
    import torch

    model.eval()
    total, count = 0.0, 0
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            batch = collator([{"input_ids": windows[i]} for i in range(start, min(start + batch_size, len(windows)))])
            batch = {key: value.to(accelerator.device) for key, value in batch.items()}
            masked = int((batch["labels"] != -100).sum())
            if not masked:
                continue
            with accelerator.autocast():
                total += float(masked_lm_loss(model, batch)) * masked
            count += masked
    torch.random.set_rng_state(state)
    model.train()
    return total / max(1, count)


def pretrain(config: MlmConfig) -> str:
    """One tracked pretraining run; returns its run id."""
    import torch
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling

    from .encoders.architectures import model_config
    from .encoders.loading import use_threads
    from .runs import check_resumable, checkpoint_dir
    from .training import decay_groups, has_checkpoint, linear_schedule, load_checkpoint

    started = time.perf_counter()
    tracking.check_store()
    if devices.world_size() > 1:
        raise UserError("mlm: pretraining runs in one process (NPROC=1)")
    base_config = model_config(config.model)
    if config.max_length > getattr(base_config, "max_position_embeddings", config.max_length):
        raise UserError(f"--max-length {config.max_length}: {model_label(config.model)} has "
                        f"{base_config.max_position_embeddings} positions")
    resumed = check_resumable(config, "mlm") if config.resume else None
    use_threads(config.cpu_threads)
    device = devices.detect_device(config.device)
    precision = devices.resolve_precision(config.precision, device, cpu_bf16_faster=True)
    devices.set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise UserError(f"--model {config.model}: its tokenizer has no [MASK], [CLS] or [SEP] token to "
                        "pretrain with")
    text = read_text(config, tokenizer)
    print(f"mlm: {len(text.windows):,} windows of <= {config.max_length} tokens ({text.tokens:,} tokens) from "
          f"{len(text.labeled_ids):,} training and {text.unlabeled_count:,} unlabelled reviews; "
          f"{len(text.heldout):,} held-out windows; {config.max_steps:,} steps of {config.batch_size} on {device}, "
          f"{precision}", flush=True)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mask_probability)
    model = _load_masked_lm(config.model)
    accelerator = devices.make_accelerator(device, precision)
    optimizer = torch.optim.AdamW([group for group in decay_groups(model, config.weight_decay) if group["params"]],
                                  lr=config.lr)
    model, optimizer = accelerator.prepare(model, optimizer)
    scheduler = linear_schedule(optimizer.optimizer, config.max_steps, config.warmup_ratio)
    progress = _Progress()
    accelerator.register_for_checkpointing(scheduler, progress)

    tags = {"family": "mlm", "model": model_label(config.model), "model_type": base_config.model_type,
            "device": device.type, "precision": precision}
    params = tracking.run_params(config, {"data_sha256": text.data_sha256,
                                          "precision_resolved": precision, "windows": len(text.windows),
                                          "window_tokens": text.tokens, "labeled_reviews": len(text.labeled_ids),
                                          "unlabeled_reviews": text.unlabeled_count})
    run_name = resumed.info.run_name if resumed else config.run_name or f"mlm-{time.strftime('%Y%m%d-%H%M%S')}"
    with tracking.start_run(run_name, {**tags, "resumed": True} if resumed else tags, None if resumed else params,
                            experiment=config.experiment, run_id=config.resume) as run:
        folder = checkpoint_dir(run.info.run_id)
        if resumed:
            if not has_checkpoint(folder):
                raise UserError(f"--resume {config.resume}: no checkpoint in {folder}")
            load_checkpoint(accelerator, folder)
            print(f"resumed after step {progress.step} of {config.max_steps}", flush=True)
        elif config.config_file:
            tracking.log_config_file(config.config_file)
        _train(config, model, optimizer, scheduler, accelerator, collator, text, progress, folder)
        encoder = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
        _log_encoder(encoder, tokenizer, config, text, base_config.model_type)
        tracking.log_final({"train_seconds": progress.train_seconds,
                            "total_seconds": time.perf_counter() - started})
        run_id = run.info.run_id
    if config.keep_checkpoints:
        print(f"checkpoints kept in {folder}", flush=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    if config.register:
        from . import model_registry
        model_registry.register(run_id, config.register, model_name=ENCODER_NAME, model_type=ENCODER_MODEL_TYPE)
    print(f"mlm: run {run_id} FINISHED in experiment {config.experiment or paths.experiment_name()} of "
          f"{paths.default_tracking_uri()}; fine-tune from it with --model runs:/{run_id}/{ENCODER_NAME}",
          flush=True)
    return run_id


def _train(config, model, optimizer, scheduler, accelerator, collator, text, progress, folder) -> None:
    import torch
    from tqdm.auto import tqdm

    from .training import check_finite, save_checkpoint

    session_start, session_tokens = time.perf_counter(), 0
    earlier_seconds = progress.train_seconds
    model.train()
    bar = tqdm(total=config.max_steps, initial=progress.step, desc="mlm steps", disable=not config.progress,
               mininterval=1.0, dynamic_ncols=True)
    for step in range(progress.step, config.max_steps):
        torch.manual_seed(config.seed * 1_000_003 + step)  # this step's masks and dropout, resumed or not
        indices = batch_indices(step, config.batch_size, len(text.windows), config.seed)
        batch = collator([{"input_ids": text.windows[i]} for i in indices])
        batch = {key: value.to(accelerator.device) for key, value in batch.items()}
        with accelerator.autocast():
            loss = masked_lm_loss(model, batch)
        progress.loss_sum += check_finite(loss, 1, step + 1, accelerator)
        progress.loss_steps += 1
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens = int(batch["attention_mask"].sum())
        session_tokens += tokens
        progress.step, progress.tokens = step + 1, progress.tokens + tokens
        progress.train_seconds = earlier_seconds + time.perf_counter() - session_start
        bar.update(1)
        done = progress.step == config.max_steps
        if progress.step % config.eval_every == 0 or done:
            per_second = session_tokens / max(1e-9, time.perf_counter() - session_start)
            held = heldout_loss(model, accelerator, text.heldout, collator, config.batch_size, config.seed)
            metrics = {"train_loss": progress.loss_sum / progress.loss_steps, "heldout_loss": held,
                       "heldout_perplexity": math.exp(min(held, 50.0)), "tokens_per_second": per_second,
                       "lr": scheduler.get_last_lr()[0], "tokens_seen": progress.tokens}
            tracking.log_epoch(progress.step, metrics)
            bar.write(f"step {progress.step}/{config.max_steps}: train_loss {metrics['train_loss']:.3f} "
                      f"heldout_loss {held:.3f} (perplexity {metrics['heldout_perplexity']:.1f}), "
                      f"{per_second:,.0f} tokens/s")
            progress.loss_sum, progress.loss_steps = 0.0, 0
            measured = True
        else:
            measured = False
        # After each measurement too: a resumed run never logs a step's metrics twice.
        if (progress.step % config.checkpoint_every == 0 or measured) and not done:
            save_checkpoint(accelerator, folder)
    bar.close()


def _add_base_extras(folder: Path, model, original: str) -> None:
    """Add to the saved weights what the bare encoder of `original` has and the masked-LM model
    lacks (BERT's pooler, which a sequence classifier reads): as the base checkpoint has them, or
    initialised once here. Left to each loader, a frozen pooler would be drawn at random anew by
    the fine-tuning run and by the server of its LoRA adapter, and they would disagree."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel

    path = folder / "model.safetensors"
    weights = load_file(str(path))
    prefix = model.base_model_prefix
    extras = {f"{prefix}.{name}": tensor.contiguous() for name, tensor in
              AutoModel.from_pretrained(original).state_dict().items() if f"{prefix}.{name}" not in weights
              and f"{prefix}.{name}" not in model.state_dict()}
    if extras:
        save_file({**weights, **extras}, str(path), metadata={"format": "pt"})


def _log_encoder(model, tokenizer, config: MlmConfig, text: Text, model_type: str) -> None:
    """The encoder as the logged model `encoder`: its save_pretrained folder with the tokenizer and
    pretraining.json (what text it read), served as a pyfunc that fills [MASK] tokens."""
    import mlflow
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="imdb-mlm-") as scratch:
        folder = Path(scratch) / ENCODER_NAME
        model.save_pretrained(folder)
        _add_base_extras(folder, model, config.model)
        tokenizer.save_pretrained(folder)
        (folder / TEXT_FILE).write_text(json.dumps({
            "run_id": mlflow.active_run().info.run_id, "base_model": model_label(config.model), "model_type": model_type, "seed": config.seed,
            "val_fraction": config.val_fraction, "limit": config.limit, "unlabeled_reviews": text.unlabeled_count,
            "labeled_ids": text.labeled_ids}, indent=1))
        from .serving import PACKAGE_DIR, pip_requirements
        mlflow.pyfunc.log_model(name=ENCODER_NAME, python_model=str(FILL_MASK_FILE),
                                artifacts={ENCODER_NAME: str(folder)}, code_paths=[str(PACKAGE_DIR)],
                                input_example=pd.DataFrame({"text": [f"A {tokenizer.mask_token} film."]}),
                                pip_requirements=pip_requirements("encoder"), model_type=ENCODER_MODEL_TYPE,
                                tags={"kind": "masked-lm"})
