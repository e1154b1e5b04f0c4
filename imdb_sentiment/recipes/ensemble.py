"""The ensemble recipe: logistic-regression stacking of finished runs' predictions.

What is special about it: nothing trains on reviews. The members (each
family's best finished run, or the runs named) must share the validation
split (combine.check_same_split, before the run starts); the stacker is fitted
on their validation logits only, and its validation accuracy is the
out-of-fold one (5 folds). The plain mean of the members' probabilities is
printed and logged beside it as the baseline a stacker has to beat. The
logged model holds every member's model and scores raw reviews like any
other (serving.log_ensemble_model). The run itself is imdb_sentiment/runs.py's.
"""

import time

import numpy as np

from .. import combine, data, model_registry, serving, store, tracking
from ..config import EnsembleConfig
from ..errors import UserError
from ..metrics import accuracy
from ..runs import Prepared, Trained
from ..training import FitResult


def members_of(config: EnsembleConfig) -> list[combine.Member]:
    if config.runs:
        return [combine.member_of(store.finished_run(run_id, "--runs", "only finished runs can be combined"))
                for run_id in config.runs.split(",")]
    families = config.families.split(",") if config.families else None
    return combine.best_runs(families, config.experiment, config)


def prepare(config: EnsembleConfig) -> Prepared:
    import torch

    members = members_of(config)
    if len(members) < 2:
        raise UserError(f"--families/--runs: an ensemble needs at least 2 members, found {len(members)}")
    splits = data.load_splits(config.data_dir, config.val_fraction, config.seed, config.limit)
    combine.check_same_split(members, {"data_sha256": splits.sha256, "seed": config.seed,
                                       "val_fraction": config.val_fraction, "limit": config.limit})
    names = [member.family for member in members]
    print(f"ensemble of {len(members)} runs: " + ", ".join(f"{m.family} ({m.run_id[:8]})" for m in members),
          flush=True)
    return Prepared(torch.device("cpu"), model="stack:" + "+".join(names),
                    params={"members": ",".join(m.run_id for m in members), "member_families": ",".join(names)},
                    context={"members": members})


def train(config: EnsembleConfig, prepared: Prepared, splits: data.Splits, on_epoch) -> Trained:
    started = time.perf_counter()
    members = prepared.context["members"]
    val_ids, test_ids = list(splits.val["id"]), list(splits.test["id"])
    val_labels = splits.val["label"].to_numpy()
    val_logits = combine.features(members, "val", val_ids)
    stacker, out_of_fold = combine.fit_stacker(val_logits, val_labels, config.seed)
    test_logits = combine.features(members, "test", test_ids)  # read only after the fit

    mean_val = np.mean(combine.sigmoid(val_logits), axis=1)
    mean_test = np.mean(combine.sigmoid(test_logits), axis=1)
    stacked_val_acc = accuracy(val_labels, out_of_fold)
    metrics = {"val_acc": stacked_val_acc, "mean_val_acc": accuracy(val_labels, mean_val),
               "mean_test_acc": accuracy(splits.test["label"], mean_test)}
    tracking.log_epoch(1, {"val_acc": stacked_val_acc})
    tracking.log_final({k: v for k, v in metrics.items() if k != "val_acc"})
    tracking.log_params({f"weight.{m.family}": round(float(w), 6) for m, w in zip(members, stacker.coef)} |
                        {"weight.intercept": round(stacker.intercept, 6)})
    print("stacking weights: " + ", ".join(f"{m.family} {w:+.3f}" for m, w in zip(members, stacker.coef)),
          flush=True)
    print(f"validation accuracy: stacked {stacked_val_acc:.4f} (out of fold), plain mean "
          f"{metrics['mean_val_acc']:.4f}; test accuracy of the plain mean {metrics['mean_test_acc']:.4f}",
          flush=True)
    probabilities = {"val": out_of_fold, "test": stacker.predict(test_logits)}

    def log_model(threshold):
        tracking.log_text(stacker.to_json(members), "ensemble.json")
        without = [m for m in members if not model_registry.has_review_model(m.run_id)]
        if without:
            print("note: no model logged (the ensemble's weights are in ensemble.json): "
                  + ", ".join(f"{m.family} ({m.run_id[:8]})" for m in without) + " logged none", flush=True)
            return
        serving.log_ensemble_model([(m.run_id, m.family) for m in members], stacker.coef, stacker.intercept,
                                   threshold)

    result = FitResult(best_epoch=1, best_val_acc=stacked_val_acc, history=[],
                       train_seconds=time.perf_counter() - started)
    # Scoring a review runs every member: the ensemble costs their sum (runs before that
    # metric existed count as 0, so the sum is then a lower bound).
    cost = sum(m.metrics.get("predict_seconds_per_1k", 0.0) for m in members)
    return Trained(result, len(members) + 1, probabilities.__getitem__, log_model, predict_seconds_per_1k=cost)
