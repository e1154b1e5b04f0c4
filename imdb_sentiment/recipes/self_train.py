"""The self-train recipe: a student fitted to the labelled split plus the unlabelled reviews a
teacher labelled, for --rounds rounds; from the second round on, the student labels them itself.

    labelled reviews:    their true label
    unlabelled reviews:  --targets hard: the label of those the labeller is at least --threshold
                         sure of (max(p, 1 - p) >= threshold), the others left out;
                         --targets soft: the labeller's P(positive), every review

The teacher is any finished run that logged a model (by default the best ensemble run), its
probabilities cached by run id as distillation caches them (recipes/distill.py: the two families
share the cache). Each round's student is scored on the validation reviews; the run keeps the
round that scored best, as a network keeps its best epoch, and logs every round as a step.

Why this student (TF-IDF NB-LR, the tfidf family's pipeline): on 2 CPU cores it fits 20,000
labelled and 50,000 pseudo-labelled reviews in about a minute, so several rounds cost minutes; a
network student over 70,000 reviews would take hours here. Self-training is the only thing it
learns the unlabelled reviews from, and the labels it trusts are the teacher's. The run itself
is imdb_sentiment/runs.py's.
"""

import os
import time

import numpy as np
import scipy.sparse as sp

from .. import data, linear, serving, tracking
from ..config import SelfTrainConfig
from ..metrics import accuracy
from ..runs import Prepared, Trained
from ..training import FitResult
from . import distill


def prepare(config: SelfTrainConfig) -> Prepared:
    return distill.prepare(config)  # the same teacher checks; the student is the same pipeline


def pseudo_labels(probs: np.ndarray, targets: str, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the unlabelled reviews the student fits, their targets) from a labeller's P(positive)."""
    if targets == "soft":
        return np.arange(len(probs)), probs
    chosen = np.flatnonzero(np.maximum(probs, 1.0 - probs) >= threshold)
    return chosen, (probs[chosen] >= 0.5).astype(np.float64)


def train(config: SelfTrainConfig, prepared: Prepared, splits: data.Splits, on_epoch) -> Trained:
    started = time.perf_counter()
    teacher = prepared.context["teacher"]
    unlabeled = data.unlabelled_reviews(config.data_dir, 2 * config.limit if config.limit else None)
    reviews = list(unlabeled["review"])
    probs = distill.teacher_probabilities(teacher, [f"unlabeled:{i}" for i in unlabeled["id"]], reviews,
                                          config.teacher_precision)

    def new_pipeline():
        return linear.build_pipeline(config.ngram_max, config.max_length, config.hash_bits, config.min_df,
                                     config.C, config.max_iter, config.seed)

    hashing = new_pipeline().steps[0][1]  # stateless: the reviews are hashed once for every round
    cores = os.cpu_count() or 1
    labelled = linear.hash_in_parallel(hashing, splits.train["review"], cores)
    unlabelled = linear.hash_in_parallel(hashing, reviews, cores)
    val_features = linear.hash_in_parallel(hashing, splits.val["review"], cores)
    labels = splits.train["label"].to_numpy().astype(np.float64)

    history, best = [], None
    for round_ in range(1, config.rounds + 1):
        round_started = time.perf_counter()
        chosen, targets = pseudo_labels(probs, config.targets, config.threshold)
        pipeline = new_pipeline()
        with linear.solver_stop_noted(pipeline):
            linear.fit_soft(pipeline, sp.vstack([labelled, unlabelled[chosen]]).tocsr(),
                            np.concatenate([labels, targets]))
        val_probs = pipeline[1:].predict_proba(val_features)[:, 1]
        metrics = {"val_acc": accuracy(splits.val["label"], val_probs), "pseudo_labelled": len(chosen),
                   "pseudo_positive_share": float(np.mean(targets >= 0.5)) if len(chosen) else float("nan"),
                   "epoch_seconds": time.perf_counter() - round_started}
        history.append({"train_loss": float("nan"), "val_loss": float("nan"), "train_acc": float("nan"), **metrics})
        tracking.log_epoch(round_, metrics)
        print(f"round {round_}/{config.rounds}: {len(chosen):,} of {len(probs):,} unlabelled reviews "
              f"{'pseudo-labelled' if config.targets == 'hard' else 'with soft targets'} by the "
              f"{'teacher' if round_ == 1 else 'student'}, val_acc {metrics['val_acc']:.4f}", flush=True)
        if best is None or metrics["val_acc"] > best[1]:
            best = (round_, metrics["val_acc"], pipeline, val_probs)
        if on_epoch:
            on_epoch(round_, metrics, round_ == config.rounds)
        if round_ < config.rounds:
            probs = pipeline[1:].predict_proba(unlabelled)[:, 1]  # the student labels the next round's
    best_round, best_val_acc, pipeline, val_probs = best
    result = FitResult(best_epoch=best_round, best_val_acc=best_val_acc, history=history,
                       train_seconds=time.perf_counter() - started)
    classifier = pipeline.named_steps["classifier"]
    tracking.log_params({"solver_passes": int(np.max(classifier.n_iter_)), "unlabeled_reviews": len(reviews)})

    def log_model(threshold):
        serving.log_tfidf_model(pipeline, {"family": "self-train", "teacher": teacher.run_id}, threshold)

    def predict(name):
        return val_probs if name == "val" else linear.score(pipeline, getattr(splits, name)["review"])

    return Trained(result, int(classifier.coef_.size + classifier.intercept_.size), predict, log_model)
