"""Did tuning help? The study's best trial against its reference trial, on the same reviews, with
an interval; the smallest difference a study can tell apart; the confirm step.

    compare(correct_best, correct_reference)   # Comparison: difference, 95% interval, verdict

Both trials logged each validation review's prediction (val_predictions.csv), so the difference of
their accuracies is a mean of per-review differences (+1, 0 or -1) and its interval comes from a
paired bootstrap over the reviews. Why a bootstrap rather than McNemar's test: McNemar says
whether the two differ, not by how much; the bootstrap gives the interval the verdict is read
from (better, indistinguishable, worse), and with per-review differences of three values it is
exact to sample (a multinomial draw per resample, not n indices).

The best trial was chosen on these same reviews, so its lead is biased upward (the winner's
curse): `--confirm K` retrains both settings with K new seeds and compares their test accuracy,
which no choice has seen.
"""

from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
RESAMPLES = 20_000
# How often two settings of one family disagree on a review, to size an interval before any trial
# has run: near 10% for two models that learn (the word-vector and encoder runs of this lab);
# models near chance disagree more, so their interval is wider than the one announced.
ASSUMED_DISAGREEMENT = 0.10


@dataclass(frozen=True)
class Comparison:
    """Accuracy of A minus accuracy of B on the same n reviews, with its interval."""
    difference: float
    low: float
    high: float
    n: int

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "indistinguishable"

    def describe(self, a: str = "best", b: str = "reference") -> str:
        return (f"{a} - {b}: {self.difference:+.4f} [{self.low:+.4f}, {self.high:+.4f}] on {self.n} reviews "
                f"(paired bootstrap, {LEVEL:.0%}): {self.verdict}")


def compare(correct_a, correct_b, seed: int = 0, resamples: int = RESAMPLES) -> Comparison:
    """The paired difference of two per-review correctness vectors (booleans, the same reviews in
    the same order) with its percentile interval."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"expected two equal-length, non-empty vectors, got {a.shape} and {b.shape}")
    # Each review is one of three patterns (difference, reviews): A only right, B only, a tie.
    patterns = np.array([(1, 1), (-1, 1), (0, 1)])
    return _resampled(patterns, np.array([np.sum(a & ~b), np.sum(~a & b), np.sum(a == b)]), seed, resamples)


def _resampled(patterns: np.ndarray, counts: np.ndarray, seed: int, resamples: int) -> Comparison:
    """The difference over reviews of these patterns (rows: summed difference, seeds that predicted
    the review) seen `counts` times, with a percentile interval from resampling whole reviews: one
    multinomial draw over the patterns per resample, exact and cheap (no n indices drawn)."""
    present = counts > 0
    patterns, counts = patterns[present], counts[present]
    n = int(counts.sum())
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=resamples)
    differences = (draws @ patterns[:, 0]) / (draws @ patterns[:, 1])
    tail = (1 - LEVEL) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    total = float(patterns[:, 0] @ counts) / float(patterns[:, 1] @ counts)
    return Comparison(total, float(low), float(high), n)


def detectable_difference(n: int, disagreement: float = ASSUMED_DISAGREEMENT) -> float:
    """Half-width of the interval of a difference near 0 on n reviews (the per-review difference is
    ±1 on `disagreement` of the reviews): a smaller difference always shows as indistinguishable,
    and one of this size only about half the time."""
    return 1.96 * float(np.sqrt(disagreement / n))


def validation_size(config) -> int:
    """How many reviews the trials validate on: the split data.load_splits makes, counted."""
    from .. import data

    rows = data.load_kaggle(config.data_dir, "labeled").rows
    if config.limit:
        rows = data.stratified_sample(rows, config.limit, config.seed)
    return sum(int(round(count * config.val_fraction)) for count in rows["label"].value_counts())


def sizing_note(config) -> str:
    n = validation_size(config)
    return (f"validation: {n} reviews; differences under ±{detectable_difference(n):.3f} between two settings "
            f"will show as indistinguishable (95%, if they disagree on {ASSUMED_DISAGREEMENT:.0%} of the reviews)")


def mean_sd(values) -> str:
    """`0.8912 ± 0.0034` (sample sd; one value has none)."""
    values = np.asarray(values, dtype=float)
    sd = f" ± {values.std(ddof=1):.4f}" if values.size > 1 else ""
    return f"{values.mean():.4f}{sd}"


def correct(frame) -> np.ndarray:
    """Per review of a logged predictions file (id, label, prob_positive): right at threshold 0.5."""
    return (frame["prob_positive"].to_numpy() >= 0.5) == (frame["label"].to_numpy() == 1)


def compare_runs(run_a: str, run_b: str, split: str = "val", seed: int = 0) -> Comparison:
    """Two runs' logged predictions of one split, review by review (their ids must match)."""
    return compare_pooled([(run_a, run_b)], split, seed)


def compare_pooled(pairs: list[tuple[str, str]], split: str = "test", seed: int = 0,
                   resamples: int = RESAMPLES) -> Comparison:
    """Several (A run, B run) pairs, each pair trained with its own seed: the difference of their
    accuracies over every (seed, review), with an interval that resamples whole reviews. On the
    full data every seed predicts the same test reviews, and a review hard for one seed is hard for
    the others: resampling (seed, review) rows as if independent would make the interval too
    narrow. The seeds' own spread is reported beside it (mean ± sd)."""
    from .. import store

    by_review: dict[str, list[int]] = {}
    for run_a, run_b in pairs:
        a, b = store.logged_predictions(run_a, split), store.logged_predictions(run_b, split)
        b = b.set_index("id").reindex(a["id"])
        if b["prob_positive"].isna().any():
            raise ValueError(f"runs {run_a} and {run_b} did not predict the same {split} reviews")
        for review, difference in zip(a["id"], correct(a).astype(int) - correct(b.reset_index()).astype(int)):
            by_review.setdefault(review, []).append(int(difference))
    return compare_clustered(by_review, seed, resamples)


def compare_clustered(by_review: dict, seed: int = 0, resamples: int = RESAMPLES) -> Comparison:
    """review -> its per-seed differences (+1, 0, -1): the pooled difference, and an interval that
    resamples whole reviews."""
    # A review is (sum of its differences, how many seeds predicted it): few such patterns exist.
    patterns, counts = np.unique(np.array([(sum(d), len(d)) for d in by_review.values()]), axis=0,
                                 return_counts=True)
    return _resampled(patterns, counts, seed, resamples)
