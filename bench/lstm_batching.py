"""make bench-lstm   (or: python bench/lstm_batching.py --help)

One training epoch of our BiLSTM, timed side by side in one run:

    ours:       length-bucketed batches padded to their longest review, each
                direction run within a review's length (MaskedBiRNN)
    reference:  every review padded (or cut) to 512 tokens, random batches,
                the same network reading the padding as if it were text

Same reviews, same weights at the start, same batch size. Prints both
times and the ratio, and the test accuracy of the best finished full-data
LSTM run in the MLflow store; logs the timings as one MLflow run (tag
benchmark=lstm_batching).
"""

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from imdb_sentiment import data, device as devices, text, tracking
from imdb_sentiment.batching import TokenIds, make_loader, pad_batch
from imdb_sentiment.config import EmbeddingConfig, option, parse_config, require
from imdb_sentiment.errors import UserError, run_main
from imdb_sentiment.models import build_model, forward_batch, make_embedding
from imdb_sentiment.training import FitSettings, fit

REFERENCE_LENGTH = 512


@dataclass
class BenchConfig(EmbeddingConfig):
    reviews: int = option(2000, "training reviews each side trains on for one epoch")

    def __post_init__(self):
        super().__post_init__()
        require(self.reviews >= 10, "reviews", "an integer >= 10", self.reviews)


def padded_to_reference(sequences) -> list[np.ndarray]:
    """What the reference did: cut at 512 and pad every review with PAD up to 512."""
    out = []
    for seq in sequences:
        seq = seq[:REFERENCE_LENGTH]
        out.append(np.concatenate([seq, np.full(REFERENCE_LENGTH - len(seq), text.PAD_ID, np.int32)]))
    return out


def forward_reading_padding(model, batch):
    """The reference's network saw all 512 positions as text."""
    full = torch.full_like(batch["lengths"], batch["ids"].shape[1])
    return model(batch["ids"], full)


def time_epoch(config, vocab_size, loader, val_loader, forward) -> float:
    devices.set_seed(config.seed)
    model = build_model("lstm", config, make_embedding(None, vocab_size, config.embedding_dim, False))
    settings = FitSettings(epochs=1, lr=config.lr, patience=0, progress=config.progress)
    started = time.perf_counter()
    fit(model, loader, val_loader, settings, torch.device("cpu"), forward=forward)
    return time.perf_counter() - started


def best_full_data_lstm_accuracy() -> str:
    """The test accuracy of the LSTM run that stands for the family (store.select_run), if a full-data one."""
    from imdb_sentiment import paths, store

    try:
        runs = store.RunStore(paths.default_tracking_uri(), paths.experiment_name()).runs()
    except UserError:  # no experiment yet
        runs = []
    best = store.best_runs(runs).get("lstm")
    if best is None or not best.full_data:
        return "no finished full-data LSTM run in the MLflow store yet (make train-lstm)"
    return (f"{best.metrics['test_acc']:.4f} (run {best.run_id}, test AUC "
            f"{best.metrics.get('test_auc', float('nan')):.4f})")


def main(argv=None):
    config = parse_config(BenchConfig, argv, prog="bench/lstm_batching.py", description=__doc__,
                          defaults={"model": "lstm"})
    devices.use_all_cores()
    splits = data.load_splits(config.data_dir, config.val_fraction, config.seed, config.reviews)
    tokens = text.reviews_to_tokens(splits.train["review"])
    vocab = text.Vocab.build(tokens, config.min_freq)
    sequences = [vocab.encode(t) for t in tokens]
    labels = splits.train["label"].to_numpy()
    # validation is not what is timed: a few reviews keep fit() whole
    truncated = [text.truncate(ids, config.max_length, config.truncation) for ids in sequences]
    val_loader = make_loader(TokenIds(truncated[:16], labels[:16]), 16, False, 0)
    ours = make_loader(TokenIds(truncated, labels), config.batch_size, True, config.seed)
    reference = DataLoader(TokenIds(padded_to_reference(sequences), labels),
                           batch_size=config.batch_size, shuffle=True, collate_fn=pad_batch,
                           generator=torch.Generator().manual_seed(config.seed))
    ours_seconds = time_epoch(config, len(vocab), ours, val_loader, forward_batch)
    reference_seconds = time_epoch(config, len(vocab), reference, val_loader, forward_reading_padding)
    speedup = reference_seconds / ours_seconds
    print(f"one epoch over {len(sequences)} reviews, batch {config.batch_size}, hidden {config.hidden_size}:")
    print(f"  ours (bucketed, max_length {config.max_length}, no padding read): {ours_seconds:8.1f} s")
    print(f"  reference (all padded to {REFERENCE_LENGTH}, padding read):        {reference_seconds:8.1f} s")
    print(f"  speed-up: {speedup:.2f}x")
    print(f"full-data LSTM test accuracy: {best_full_data_lstm_accuracy()}")
    with tracking.start_run(f"bench-lstm-{time.strftime('%Y%m%d-%H%M%S')}",
                            {"benchmark": "lstm_batching", "device": "cpu"},
                            tracking.run_params(config), experiment=config.experiment):
        tracking.log_final({"ours_seconds": ours_seconds, "reference_seconds": reference_seconds,
                            "speedup": speedup, "reviews": len(sequences)})


if __name__ == "__main__":
    run_main(main)
