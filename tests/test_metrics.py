"""The metrics against hand-computed values, and best_threshold against a brute-force search."""

import math

import numpy as np
import pytest

from imdb_sentiment import metrics

LABELS = [1, 1, 1, 0, 0, 0]
PROBS = [0.9, 0.6, 0.4, 0.7, 0.2, 0.1]  # at 0.5: TP 2, FN 1, FP 1, TN 2


def test_f1_and_mcc_from_the_confusion_matrix():
    tp, fn, fp, tn = 2, 1, 1, 2
    assert metrics.f1(LABELS, PROBS) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    expected_mcc = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert metrics.mcc(LABELS, PROBS) == pytest.approx(expected_mcc)
    # A higher threshold moves 0.6 to negative: TP 1, FN 2, FP 1.
    assert metrics.f1(LABELS, PROBS, threshold=0.65) == pytest.approx(2 / (2 + 1 + 2))


def test_f1_and_mcc_of_degenerate_predictions_are_zero():
    assert metrics.f1([1, 0], [0.1, 0.2]) == 0.0
    assert metrics.mcc([1, 0], [0.9, 0.8]) == 0.0


def test_log_loss_and_brier():
    expected_log_loss = -np.mean([math.log(p) if y else math.log(1 - p) for y, p in zip(LABELS, PROBS)])
    assert metrics.log_loss(LABELS, PROBS) == pytest.approx(expected_log_loss)
    assert metrics.brier(LABELS, PROBS) == pytest.approx(np.mean((np.array(PROBS) - LABELS) ** 2))
    # One class only, and certain wrong answers: still finite numbers.
    assert metrics.log_loss([1, 1], [1.0, 0.0]) > 10
    assert metrics.brier([0, 0], [0.0, 1.0]) == pytest.approx(0.5)


def test_best_threshold_is_half_when_half_is_best():
    assert metrics.best_threshold([0, 0, 1, 1], [0.1, 0.4, 0.6, 0.9]) == 0.5


def test_best_threshold_moves_to_the_gap_that_separates_the_classes():
    threshold = metrics.best_threshold([0, 0, 1, 1], [0.1, 0.55, 0.6, 0.9])
    assert threshold == pytest.approx(0.575)
    assert metrics.accuracy([0, 0, 1, 1], [0.1, 0.55, 0.6, 0.9], threshold) == 1.0


def test_best_threshold_ties_go_to_the_one_nearest_half():
    # Thresholds in (0.2, 0.3] and in (0.8, 0.9] both score 3/4: the lower gap is nearer 0.5 ...
    assert metrics.best_threshold([0, 1, 0, 1], [0.2, 0.3, 0.8, 0.9]) == pytest.approx(0.25)
    # ... and here the upper one, (0.7, 0.75] against (0.1, 0.35].
    assert metrics.best_threshold([0, 1, 0, 1], [0.1, 0.35, 0.7, 0.75]) == pytest.approx(0.725)


def distance_of_gap_to_half(threshold: float, probs) -> float:
    """How far from 0.5 the gap between probabilities holding this threshold lies (0: it holds 0.5)."""
    edges = np.unique(np.concatenate([[0.0], probs, [1.0]]))
    low, high = edges[edges < threshold].max(), edges[edges >= threshold].min()
    return 0.0 if low < 0.5 <= high else min(abs(low - 0.5), abs(high - 0.5))


@pytest.mark.parametrize("seed", range(20))
def test_best_threshold_matches_a_brute_force_search(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 40)
    probs = np.clip(0.5 + 0.3 * (labels - 0.5) + rng.normal(0, 0.25, 40), 0, 1).round(2)
    # Probabilities have 2 decimals: this grid falls in every gap between them and never on one.
    grid = 0.00125 + 0.0025 * np.arange(400)
    scores = np.array([metrics.accuracy(labels, probs, t) for t in grid])
    best = metrics.best_threshold(labels, probs)
    assert metrics.accuracy(labels, probs, best) == pytest.approx(scores.max())
    assert distance_of_gap_to_half(best, probs) == pytest.approx(
        min(distance_of_gap_to_half(t, probs) for t in grid[scores == scores.max()]))
