"""imdb_sentiment/search/evidence.py: the paired interval of the best trial against the reference,
its verdict, and the size of difference a study can see."""

import numpy as np
import pytest

from imdb_sentiment.search import evidence


def test_the_same_predictions_are_indistinguishable():
    right = np.random.default_rng(0).random(500) < 0.8
    same = evidence.compare(right, right)
    assert (same.difference, same.low, same.high, same.n) == (0.0, 0.0, 0.0, 500)
    assert same.verdict == "indistinguishable"


def test_a_clear_lead_is_better_and_a_clear_deficit_worse():
    rng = np.random.default_rng(1)
    reference = rng.random(2000) < 0.80
    best = reference | (rng.random(2000) < 0.25)  # right wherever the reference is, and on more reviews
    ahead = evidence.compare(best, reference)
    assert ahead.difference == pytest.approx(best.mean() - reference.mean())
    assert 0 < ahead.low < ahead.difference < ahead.high
    assert ahead.verdict == "better"
    assert evidence.compare(reference, best).verdict == "worse"


def test_a_small_difference_on_few_reviews_is_indistinguishable():
    # 80 reviews (a 400-review study's validation): 2 more right is 2.5 points and tells nothing
    reference = np.array([True] * 60 + [False] * 20)
    best = reference.copy()
    best[60:62] = True
    result = evidence.compare(best, reference)
    assert result.difference == pytest.approx(0.025)
    assert result.low <= 0 < result.high and result.verdict == "indistinguishable"
    assert "+0.0250 [" in result.describe() and "indistinguishable" in result.describe()


def test_the_interval_has_its_nominal_coverage():
    """Pairs drawn with a known true difference: the 95% interval holds it in about 95% of studies."""
    rng = np.random.default_rng(2)
    true_difference, hits = 0.02, 0
    for study in range(200):
        u = rng.random(1000)
        a, b = u < 0.10, (u >= 0.10) & (u < 0.10 + 0.10 - true_difference)  # a right alone 10%, b 8%
        result = evidence.compare(~b, ~a, seed=study, resamples=2000)
        hits += result.low <= true_difference <= result.high
    assert 0.90 <= hits / 200 <= 0.99


def test_unequal_vectors_are_refused():
    with pytest.raises(ValueError):
        evidence.compare([True, False], [True])


def test_the_detectable_difference_shrinks_with_the_square_root_of_the_reviews():
    assert evidence.detectable_difference(80) == pytest.approx(0.0693, abs=1e-4)
    assert evidence.detectable_difference(5000) == pytest.approx(0.0088, abs=1e-4)
    assert evidence.detectable_difference(320) == pytest.approx(evidence.detectable_difference(80) / 2)


def test_the_sizing_note_counts_the_split_the_trials_validate_on(tiny_data_dir):
    from imdb_sentiment.config import EmbeddingConfig
    from imdb_sentiment.data import load_splits

    config = EmbeddingConfig(data_dir=str(tiny_data_dir), limit=40, embeddings="random")
    assert evidence.validation_size(config) == len(load_splits(tiny_data_dir, 0.2, 42, 40).val)
    assert evidence.sizing_note(config).startswith(f"validation: {evidence.validation_size(config)} reviews; "
                                                   "differences under ±")


def test_mean_and_sd():
    assert evidence.mean_sd([0.9, 0.92, 0.91]) == "0.9100 ± 0.0100"
    assert evidence.mean_sd([0.9]) == "0.9000"


def test_seeds_that_agree_on_each_review_add_no_reviews():
    """Three seeds scoring the same reviews the same way carry the information of one: the pooled
    interval resamples reviews, so it is as wide as one seed's, not sqrt(3) narrower."""
    rng = np.random.default_rng(3)
    a, b = rng.random(2000) < 0.85, rng.random(2000) < 0.83
    one = evidence.compare(a, b, seed=0)
    by_review = {str(i): [int(x) - int(y)] * 3 for i, (x, y) in enumerate(zip(a, b))}
    pooled = evidence.compare_clustered(by_review, seed=0)
    assert pooled.difference == pytest.approx(one.difference)
    assert (pooled.high - pooled.low) == pytest.approx(one.high - one.low, rel=0.05)
    # seeds on other reviews (a --limit study: each seed its own slice) are more evidence
    apart = {f"{seed}-{i}": [int(x) - int(y)] for seed in range(3) for i, (x, y) in enumerate(zip(a, b))}
    assert (evidence.compare_clustered(apart).high - evidence.compare_clustered(apart).low) < \
        0.7 * (one.high - one.low)
