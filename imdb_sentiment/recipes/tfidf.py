"""The TF-IDF recipe: word 1-3-grams hashed, naive-Bayes feature weights,
logistic regression (NB-LR), the strong linear baseline trained in about a minute.

What is special about it: no network and no epochs (--max-iter caps the
solver's passes; a solver stopped there says so); features are hashed on
every core; the sklearn pipeline, which takes raw text, is the logged model.
The run itself is imdb_sentiment/runs.py's.
"""

import os
import time

import numpy as np

from .. import data, linear, serving, tracking
from ..config import TfidfConfig
from ..metrics import accuracy
from ..runs import Prepared, Trained, fitted_once


def prepare(config: TfidfConfig) -> Prepared:
    import torch

    return Prepared(torch.device("cpu"), model="nb-logreg")


def train(config: TfidfConfig, prepared: Prepared, splits: data.Splits, on_epoch) -> Trained:
    started = time.perf_counter()
    pipeline = linear.build_pipeline(config.ngram_max, config.max_length, config.hash_bits, config.min_df,
                                     config.C, config.max_iter, config.seed)
    hasher, rest = pipeline.steps[0][1], pipeline[1:]

    def predict(name):
        return linear.score(pipeline, getattr(splits, name)["review"])

    train_features = linear.hash_in_parallel(hasher, splits.train["review"], os.cpu_count() or 1)
    with linear.solver_stop_noted(pipeline):
        rest.fit(train_features, splits.train["label"].to_numpy())
    # Test reviews are hashed and scored when the run skeleton asks (and times) them.
    probs = {"train": rest.predict_proba(train_features)[:, 1], "val": predict("val")}
    result = fitted_once({"train_acc": accuracy(splits.train["label"], probs["train"]),
                          "val_acc": accuracy(splits.val["label"], probs["val"])}, started, on_epoch)
    classifier = pipeline.named_steps["classifier"]
    tracking.log_params({"solver_passes": int(np.max(classifier.n_iter_))})

    def log_model(threshold):
        serving.log_tfidf_model(pipeline, {"family": "tfidf"}, threshold)

    return Trained(result, int(classifier.coef_.size + classifier.intercept_.size),
                   lambda name: probs[name] if name in probs else predict(name), log_model)
