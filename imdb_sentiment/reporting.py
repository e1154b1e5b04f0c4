"""What every family logs about its data and its predictions.

    log_data(splits, data_dir)              # at run start: datasets, val_split_sha256
    report_test(splits, test_probs, val_probs, ...)   # once trained: metrics, files, plots

One place so that every family logs the same inputs, final metrics,
submission, predictions and plots under the same names.
"""

import hashlib
import time
from pathlib import Path

import numpy as np

from . import data, metrics, tracking

# MLflow dataset contexts of the splits (the UI's Dataset column shows them).
CONTEXTS = {"train": "training", "val": "validation", "test": "test"}
SOURCES = {"train": "labeled", "val": "labeled", "test": "test"}  # the Kaggle file each split comes from


def ids_sha256(ids) -> str:
    """sha256 of review ids in order, one a line."""
    return hashlib.sha256("\n".join(str(i) for i in ids).encode()).hexdigest()


def log_data(splits: data.Splits, data_dir) -> None:
    """The run's three splits as MLflow datasets (source: the Kaggle file each came from), and the
    param val_split_sha256: the validation ids in order. data.load_splits is deterministic in the
    data, --seed, --val-fraction and --limit, so runs that agree on those share the hash, and
    their val_predictions.csv can be combined (a stacker, a threshold) review by review."""
    tracking.log_params({"val_split_sha256": ids_sha256(splits.val["id"])})
    files = {kind: data.find_kaggle_file(Path(data_dir), kind) for kind in set(SOURCES.values())}
    tracking.log_datasets([(CONTEXTS[name], f"imdb-{CONTEXTS[name]}", getattr(splits, name),
                            Path(files[SOURCES[name]]).resolve()) for name in CONTEXTS])


def learning_curve_figure(history: list[dict]):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history) + 1)
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for key, axis in (("loss", loss_axis), ("acc", acc_axis)):
        axis.plot(epochs, [h[f"train_{key}"] for h in history], marker="o", label="train")
        axis.plot(epochs, [h[f"val_{key}"] for h in history], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.legend()
    figure.tight_layout()
    return figure


def confusion_figure(labels, probs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(labels, (np.asarray(probs) >= 0.5).astype(int), labels=[0, 1])
    figure, axis = plt.subplots(figsize=(4, 4))
    axis.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        axis.text(col, row, str(value), ha="center", va="center")
    axis.set_xticks([0, 1], ["negative", "positive"])
    axis.set_yticks([0, 1], ["negative", "positive"])
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    figure.tight_layout()
    return figure


def report_test(splits: data.Splits, test_probs, val_probs, history: list[dict], best_epoch: int,
                best_val_acc: float, train_seconds: float, run_started: float, trainable_params: int,
                device_count: int = 1, predict_seconds_per_1k: float | None = None) -> dict:
    """Log final metrics and the test and validation artifacts to the active run; returns the metrics.

    predict_seconds_per_1k, the time the test predictions took per 1,000 reviews, is what scoring
    new reviews costs with this model.

    test_acc (at 0.5) stays the headline; best_threshold, the one that maximises validation
    accuracy, is what the logged model's label uses.
    """
    import matplotlib.pyplot as plt

    test_rows, val_rows = splits.test, splits.val
    labels = test_rows["label"].to_numpy()
    final = {
        "test_acc": metrics.accuracy(labels, test_probs),
        "test_auc": metrics.auc(labels, test_probs),
        "test_f1": metrics.f1(labels, test_probs),
        "test_mcc": metrics.mcc(labels, test_probs),
        "test_log_loss": metrics.log_loss(labels, test_probs),
        "test_brier": metrics.brier(labels, test_probs),
        "best_threshold": metrics.best_threshold(val_rows["label"].to_numpy(), val_probs),
        "best_epoch": best_epoch,
        "best_val_acc": best_val_acc,
        "train_seconds": train_seconds,
        "trainable_params": trainable_params,
        "device_hours": (time.perf_counter() - run_started) * device_count / 3600.0,
    }
    if predict_seconds_per_1k is not None:
        final["predict_seconds_per_1k"] = predict_seconds_per_1k
    tracking.log_final(final)
    with tracking.scratch_dir() as scratch:
        scratch = Path(scratch)
        metrics.write_submission(scratch / "submission.csv", test_rows["id"], test_probs)
        metrics.write_predictions(scratch / "predictions.csv", test_rows["id"], test_rows["rating"],
                                  labels, test_probs)
        metrics.write_validation_predictions(scratch / "val_predictions.csv", val_rows["id"], val_rows["label"],
                                             val_probs)
        for name in ("submission.csv", "predictions.csv", "val_predictions.csv"):
            tracking.log_file(scratch / name)
    if history:
        figure = learning_curve_figure(history)
        tracking.log_figure(figure, "learning_curve.png")
        plt.close(figure)
    figure = confusion_figure(labels, test_probs)
    tracking.log_figure(figure, "confusion_matrix.png")
    plt.close(figure)
    print(f"test_acc {final['test_acc']:.4f} test_auc {final['test_auc']:.4f} test_f1 {final['test_f1']:.4f} "
          f"(best epoch {best_epoch}, val_acc {best_val_acc:.4f}; threshold {final['best_threshold']:.3f})",
          flush=True)
    return final
