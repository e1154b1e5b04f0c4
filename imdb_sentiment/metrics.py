"""Accuracy, AUC, F1, MCC, log loss, Brier score, the best threshold, and the Kaggle submission file."""

import csv
from pathlib import Path

import numpy as np
from sklearn.metrics import brier_score_loss, f1_score, matthews_corrcoef, roc_auc_score
from sklearn.metrics import log_loss as sklearn_log_loss


def accuracy(labels, probs, threshold: float = 0.5) -> float:
    return float(np.mean((np.asarray(probs) >= threshold) == np.asarray(labels)))


def auc(labels, probs) -> float:
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, probs))


def f1(labels, probs, threshold: float = 0.5) -> float:
    """F1 of the positive class; 0 when nothing is predicted or labelled positive."""
    return float(f1_score(np.asarray(labels), np.asarray(probs) >= threshold, zero_division=0.0))


def mcc(labels, probs, threshold: float = 0.5) -> float:
    """Matthews correlation of the labels and the predictions (0 when either is constant)."""
    return float(matthews_corrcoef(np.asarray(labels), np.asarray(probs) >= threshold))


def log_loss(labels, probs) -> float:
    """Mean negative log-likelihood of the labels (probabilities clipped away from 0 and 1)."""
    return float(sklearn_log_loss(np.asarray(labels), np.asarray(probs, dtype=np.float64), labels=[0, 1]))


def brier(labels, probs) -> float:
    """Mean squared gap between P(positive) and the label."""
    return float(brier_score_loss(np.asarray(labels), np.asarray(probs), pos_label=1))


def best_threshold(labels, probs) -> float:
    """The threshold (positive: prob >= threshold) that maximises accuracy, ties to the one nearest 0.5.

    Accuracy only changes where the threshold crosses a probability, so the
    candidates are 0.5 and the midpoints between consecutive distinct
    probabilities (0 and 1 included as ends): a midpoint keeps a margin on both
    sides, where a threshold equal to a validation probability would not.
    """
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    edges = np.unique(np.concatenate([[0.0], probs, [1.0]]))
    candidates = np.concatenate([[0.5], (edges[:-1] + edges[1:]) / 2])
    order = np.argsort(probs, kind="stable")
    sorted_probs, sorted_labels = probs[order], labels[order]
    # Reviews below a threshold are predicted negative: correct where labelled 0.
    below = np.searchsorted(sorted_probs, candidates, side="left")
    negatives_below = np.concatenate([[0], np.cumsum(sorted_labels == 0)])[below]
    positives_above = int(np.sum(labels == 1)) - np.concatenate([[0], np.cumsum(sorted_labels == 1)])[below]
    correct = negatives_below + positives_above
    best = np.flatnonzero(correct == correct.max())
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


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


def write_validation_predictions(path: Path, ids, labels, probs) -> None:
    """id, label, prob_positive of each validation review, in the split's order (what a stacker
    or a threshold is fitted on)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label", "prob_positive"])
        for review_id, label, prob in zip(ids, labels, probs):
            writer.writerow([review_id, int(label), f"{float(prob):.6f}"])
