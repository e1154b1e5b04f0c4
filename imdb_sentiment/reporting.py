"""What every family logs when it has predictions for the test reviews.

One function so that the LSTM, TF-IDF and the encoders log the same final
metrics, submission, predictions and plots under the same names.
"""

import time
from pathlib import Path

import numpy as np

from . import metrics, tracking


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


def report_test(test_rows, test_probs, history: list[dict], best_epoch: int, best_val_acc: float,
                train_seconds: float, run_started: float, trainable_params: int,
                device_count: int = 1) -> dict:
    """Log final metrics and the test artifacts to the active run; returns the metrics."""
    import matplotlib.pyplot as plt

    labels = test_rows["label"].to_numpy()
    final = {
        "test_acc": metrics.accuracy(labels, test_probs),
        "test_auc": metrics.auc(labels, test_probs),
        "best_epoch": best_epoch,
        "best_val_acc": best_val_acc,
        "train_seconds": train_seconds,
        "trainable_params": trainable_params,
        "device_hours": (time.perf_counter() - run_started) * device_count / 3600.0,
    }
    tracking.log_final(final)
    with tracking.scratch_dir() as scratch:
        scratch = Path(scratch)
        metrics.write_submission(scratch / "submission.csv", test_rows["id"], test_probs)
        metrics.write_predictions(scratch / "predictions.csv", test_rows["id"], test_rows["rating"],
                                  labels, test_probs)
        tracking.log_file(scratch / "submission.csv")
        tracking.log_file(scratch / "predictions.csv")
    if history:
        figure = learning_curve_figure(history)
        tracking.log_figure(figure, "learning_curve.png")
        plt.close(figure)
    figure = confusion_figure(labels, test_probs)
    tracking.log_figure(figure, "confusion_matrix.png")
    plt.close(figure)
    print(f"test_acc {final['test_acc']:.4f} test_auc {final['test_auc']:.4f} "
          f"(best epoch {best_epoch}, val_acc {best_val_acc:.4f})", flush=True)
    return final
