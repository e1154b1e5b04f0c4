"""Accuracy, AUC and the Kaggle submission file."""

import csv
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score


def accuracy(labels, probs, threshold: float = 0.5) -> float:
    return float(np.mean((np.asarray(probs) >= threshold) == np.asarray(labels)))


def auc(labels, probs) -> float:
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, probs))


def write_submission(path: Path, ids, probs) -> None:
    """Kaggle's format: header `id,sentiment`, ids quoted as in sampleSubmission.csv.

    The probability is written, not a 0/1 label: Kaggle scores this
    competition by AUC, which a label throws away.
    """
    with open(path, "w", newline="") as handle:
        handle.write("id,sentiment\n")
        for review_id, prob in zip(ids, probs):
            handle.write(f'"{review_id}",{float(prob):.6f}\n')


def write_predictions(path: Path, ids, ratings, labels, probs) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "rating", "label", "prob_positive", "prediction"])
        for row in zip(ids, ratings, labels, probs):
            writer.writerow([row[0], int(row[1]), int(row[2]), f"{float(row[3]):.6f}", int(row[3] >= 0.5)])
