"""make train-tfidf   (or: python train/tfidf.py --help)

TF-IDF over word 1-3-grams with naive-Bayes feature weights and logistic
regression (NB-LR): the strong linear baseline, trained in about a minute.
"""

import os
import time
from dataclasses import dataclass

import numpy as np

from imdb_sentiment import data, linear, tracking
from imdb_sentiment.config import RunConfig, option, parse_config, require
from imdb_sentiment.device import set_seed
from imdb_sentiment.errors import run_main
from imdb_sentiment.metrics import accuracy
from imdb_sentiment.reporting import report_test


@dataclass
class TfidfConfig(RunConfig):
    ngram_max: int = option(3, "longest word n-gram used as a feature")
    hash_bits: int = option(22, "features are hashed into 2**hash_bits columns")
    min_df: int = option(2, "n-grams in fewer training reviews than this get no weight")
    C: float = option(64.0, "inverse regularisation strength of the logistic regression")

    def __post_init__(self):
        super().__post_init__()
        require(1 <= self.ngram_max <= 5, "ngram_max", "an integer from 1 to 5", self.ngram_max)
        require(16 <= self.hash_bits <= 26, "hash_bits", "an integer from 16 to 26", self.hash_bits)
        require(self.C > 0, "C", "a positive number", self.C)


# --epochs is the solver's pass limit (dual coordinate descent: one pass over
# the reviews per iteration); --max-length the tokens kept per review. On the
# full data the solver converges after 155 passes (100 stopped it short, with a
# ConvergenceWarning); the logged `solver_passes` shows what a run needed.
DEFAULTS = {"epochs": 300, "max_length": 2500}


def main(argv=None):
    config = parse_config(TfidfConfig, argv, prog="train/tfidf.py", description=__doc__, defaults=DEFAULTS)
    started = time.perf_counter()
    set_seed(config.seed)
    splits = data.load_splits(config.data_dir, config.val_fraction, config.seed, config.limit)
    print(f"tfidf: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test reviews",
          flush=True)
    tags = {"family": "tfidf", "model": "nb-logreg", "device": "cpu"}
    params = tracking.run_params(config, {"data_sha256": splits.sha256, "device_resolved": "cpu"})
    run_name = config.run_name or f"tfidf-{time.strftime('%Y%m%d-%H%M%S')}"
    with tracking.start_run(run_name, tags, params, experiment=config.experiment):
        pipeline = linear.build_pipeline(config.ngram_max, config.max_length, config.hash_bits, config.min_df,
                                         config.C, config.epochs, config.seed)
        hasher, rest = pipeline.steps[0][1], pipeline[1:]
        cores = os.cpu_count() or 1
        features = {name: linear.hash_in_parallel(hasher, getattr(splits, name)["review"], cores)
                    for name in ("train", "val", "test")}
        fit_start = time.perf_counter()
        rest.fit(features["train"], splits.train["label"].to_numpy())
        train_seconds = time.perf_counter() - started
        probs = {name: rest.predict_proba(features[name])[:, 1] for name in ("train", "val")}
        history = [{"train_loss": float("nan"), "val_loss": float("nan"),
                    "train_acc": accuracy(splits.train["label"], probs["train"]),
                    "val_acc": accuracy(splits.val["label"], probs["val"]),
                    "epoch_seconds": time.perf_counter() - fit_start}]
        tracking.log_epoch(1, {k: v for k, v in history[0].items() if not np.isnan(v)})
        test_probs = rest.predict_proba(features["test"])[:, 1]
        classifier = pipeline.named_steps["classifier"]
        report_test(splits.test, test_probs, [], 1, history[0]["val_acc"], train_seconds, started,
                    int(classifier.coef_.size + classifier.intercept_.size))
        tracking.log_params({"solver_passes": int(np.max(classifier.n_iter_))})
        tracking.log_sklearn_model(pipeline, trusted_types=linear.OWN_TYPES)


if __name__ == "__main__":
    run_main(main)
