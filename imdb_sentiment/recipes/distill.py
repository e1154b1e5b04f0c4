"""The distill recipe: a TF-IDF NB-LR student fitted to a teacher's probabilities.

What is special about it: the targets. The teacher is any finished run that
logged a model (by default the best ensemble run); its logged pyfunc scores
the training split and the 50,000 unlabelled reviews once, and those
probabilities are cached by teacher run id beside the MLflow store
(mlflow/teacher_predictions/<id>.<precision>.csv by default, <id>.csv in fp32), so
a second student of the same teacher skips them. Each review's target is

    labelled:    alpha * label + (1 - alpha) * sigmoid(logit(p_teacher) / T)
    unlabelled:  sigmoid(logit(p_teacher) / T)

and the student (linear.build_pipeline, the tfidf family's pipeline) is fitted
to those soft targets by linear.fit_soft. Validation and test reviews are
never scored by the teacher here and never reach the fit.

Why this student: it scores reviews far faster than any network (hashing and
one sparse dot product) and is already 0.91 on its own, so the teacher's
knowledge of the unlabelled reviews is what it has to gain. The run itself is
imdb_sentiment/runs.py's.
"""

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import combine, data, linear, model_registry, paths, serving, store, tracking
from ..config import DistillConfig
from ..errors import UserError
from ..metrics import accuracy
from ..runs import Prepared, Trained, fitted_once

# The teacher scores this many reviews at a time; the cache is written after each chunk,
# so an interrupted run keeps what was scored.
CHUNK = 5000


def teacher_of(config: DistillConfig) -> combine.Member:
    if config.teacher is None:
        return combine.default_run("ensemble", config, "--teacher",
                                   "run `make ensemble` first, or give --teacher RUN_ID")
    return combine.member_of(store.finished_run(config.teacher, "--teacher", "a teacher must have finished"))


def prepare(config: DistillConfig) -> Prepared:
    import torch

    teacher = teacher_of(config)
    if not model_registry.has_review_model(teacher.run_id):
        raise UserError(f"--teacher {teacher.run_id} ({teacher.family}): the run logged no review model to "
                        "score reviews with (train it again without --no-save-model)")
    splits = data.load_splits(config.data_dir, config.val_fraction, config.seed, config.limit)
    combine.check_same_split([teacher], {"data_sha256": splits.sha256, "seed": config.seed,
                                         "val_fraction": config.val_fraction, "limit": config.limit},
                             role="teacher")
    print(f"teacher: {teacher.family} run {teacher.run_id[:8]} (test_acc "
          f"{teacher.metrics.get('test_acc', float('nan')):.4f})", flush=True)
    return Prepared(torch.device("cpu"), model="nb-logreg",
                    tags={"teacher": teacher.run_id, "teacher_family": teacher.family},
                    params={"teacher_run_id": teacher.run_id, "teacher_family": teacher.family},
                    context={"teacher": teacher})


def cache_path(teacher: combine.Member, precision: str = "fp32") -> Path:
    """The teacher's probabilities, beside the store its run is in (a run id names one run there);
    scored in another precision than fp32, a file of their own."""
    suffix = "" if precision == "fp32" else f".{precision}"
    return paths.store_dir() / "teacher_predictions" / f"{teacher.run_id}{suffix}.csv"


def _write_cache(cache: Path, known: dict) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(cache.name + ".tmp")
        pd.DataFrame({"key": list(known), "prob_positive": list(known.values())}).to_csv(partial, index=False)
        partial.replace(cache)
    except OSError as error:  # a read-only store still trains, just without the cache
        print(f"note: cannot cache the teacher's probabilities at {cache} ({error})", flush=True)


def teacher_probabilities(teacher: combine.Member, keys: list[str], reviews: list[str],
                          requested_precision: str) -> np.ndarray:
    """P(positive) the teacher gives each review (keys: "<file>:<id>"), scored by its logged model
    (its encoders in the precision `requested_precision` resolves to, serving.PRECISION_VARIABLE,
    logged to the active run as teacher_precision_resolved) where that precision's cache does not
    hold it yet."""
    precision = serving.resolve_scoring_precision(requested_precision)
    tracking.log_params({"teacher_precision_resolved": precision})
    cache = cache_path(teacher, precision)
    known = {}
    if cache.exists():
        frame = pd.read_csv(cache, dtype={"key": str})
        known = dict(zip(frame["key"], frame["prob_positive"]))
    todo = [i for i, key in enumerate(keys) if key not in known]
    if todo:
        print(f"teacher {teacher.run_id[:8]} scores {len(todo)} reviews ({len(keys) - len(todo)} cached), "
              f"encoders in {precision}", flush=True)
        with serving.scoring_precision(precision):
            pyfunc = serving.load(f"runs:/{teacher.run_id}/{serving.MODEL_NAME}")
        started = time.perf_counter()
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            probs = serving.predict_probabilities(pyfunc, [reviews[i] for i in chunk])
            known.update((keys[i], float(p)) for i, p in zip(chunk, probs))
            _write_cache(cache, known)
            print(f"  {min(start + CHUNK, len(todo))}/{len(todo)} ({time.perf_counter() - started:.0f}s)",
                  flush=True)
    return np.array([known[key] for key in keys], dtype=np.float64)


def train(config: DistillConfig, prepared: Prepared, splits: data.Splits, on_epoch) -> Trained:
    started = time.perf_counter()
    teacher = prepared.context["teacher"]
    train_rows = splits.train
    unlabeled = data.unlabelled_reviews(config.data_dir, 2 * config.limit if config.limit else None) \
        if config.unlabeled else None
    keys = [f"labeled:{i}" for i in train_rows["id"]]
    reviews = list(train_rows["review"])
    if unlabeled is not None:
        keys += [f"unlabeled:{i}" for i in unlabeled["id"]]
        reviews += list(unlabeled["review"])
    teacher_probs = teacher_probabilities(teacher, keys, reviews, config.teacher_precision)
    soft = combine.sigmoid(combine.logit(teacher_probs) / config.temperature)
    targets = soft.copy()
    labelled = len(train_rows)
    targets[:labelled] = config.alpha * train_rows["label"].to_numpy() + (1 - config.alpha) * soft[:labelled]

    pipeline = linear.build_pipeline(config.ngram_max, config.max_length, config.hash_bits, config.min_df,
                                     config.C, config.max_iter, config.seed)
    fit_started = time.perf_counter()
    with linear.solver_stop_noted(pipeline):
        linear.fit_soft(pipeline, linear.hash_in_parallel(pipeline.steps[0][1], reviews, os.cpu_count() or 1),
                        targets)
    fit_seconds = time.perf_counter() - fit_started

    def predict(name):
        return linear.score(pipeline, getattr(splits, name)["review"])

    val_probs = predict("val")
    teacher_val = combine.predictions(teacher, "val", list(splits.val["id"]))
    metrics = {"val_acc": accuracy(splits.val["label"], val_probs),
               # how often the student's label is the teacher's on the validation reviews
               "val_agreement": float(np.mean((val_probs >= 0.5) == (teacher_val >= 0.5))),
               "teacher_val_acc": accuracy(splits.val["label"], teacher_val)}
    result = fitted_once(metrics, started, on_epoch)
    classifier = pipeline.named_steps["classifier"]
    tracking.log_params({"solver_passes": int(np.max(classifier.n_iter_)), "fit_reviews": len(reviews)})
    tracking.log_final({"student_fit_seconds": fit_seconds})
    print(f"student val_acc {metrics['val_acc']:.4f} (teacher {metrics['teacher_val_acc']:.4f}, agreement "
          f"{metrics['val_agreement']:.4f}), fitted on {len(reviews)} reviews in {fit_seconds:.0f}s", flush=True)

    def log_model(threshold):
        serving.log_tfidf_model(pipeline, {"family": "distill", "teacher": teacher.run_id}, threshold)

    probs = {"val": val_probs}
    return Trained(result, int(classifier.coef_.size + classifier.intercept_.size),
                   lambda name: probs[name] if name in probs else predict(name), log_model)
