"""Combining finished runs: their logged predictions, the split they share, a stacker.

Every run logs its validation predictions (`val_predictions.csv`) and its test
predictions (`predictions.csv`), both with the review ids. An ensemble is
fitted on the validation predictions alone, so its members must have been
validated on the very same reviews: the split is a function of the data
(`data_sha256`), `seed`, `val_fraction` and `limit` (data.load_splits is
deterministic in those), and runs that log `val_split_sha256` (the hash of
the validation ids in order) are compared on it too. A member that differs is
refused with one line naming it and the difference.

Test predictions and test labels never reach a fit: `fit_stacker` takes
validation features and labels only.
"""

import json
from dataclasses import dataclass, field

import numpy as np

from . import paths, store
from .errors import UserError
from .families import FAMILIES

# The params that decide which reviews a run trained, validated and tested on.
SPLIT_PARAMS = ("data_sha256", "seed", "val_fraction", "limit")
SPLIT_HASH = "val_split_sha256"
# Families made of other runs: never members of an "all families" ensemble.
COMBINED_FAMILIES = tuple(name for name, family in FAMILIES.items() if family.table == "combined")


@dataclass(frozen=True)
class Member:
    run_id: str
    family: str
    params: dict
    metrics: dict = field(default_factory=dict)


def member_of(run: store.Run) -> Member:
    return Member(run.run_id, run.family or "?", run.params, run.metrics)


def best_runs(families: list[str] | None, experiment: str | None = None, config=None) -> list[Member]:
    """The run that stands for each family (store.select_run, the rule the tables use), among
    its finished runs that logged test predictions (all families when None but the combined
    ones); with `config`, only among the runs split as it splits (its seed, val_fraction and
    limit), so a quick --limit run never stands in for a full-data one."""
    runs = store.RunStore(paths.default_tracking_uri(), experiment or paths.experiment_name()).runs()
    wanted = None if config is None else \
        {key: str(getattr(config, key)) for key in SPLIT_PARAMS if key != "data_sha256"}
    eligible = [run for run in runs if "test_acc" in run.metrics and
                (wanted is None or all(run.params.get(k, "None") == v for k, v in wanted.items()))]
    best = store.best_runs(eligible)
    if families is None:
        # A transductive run trained on the test reviews' text: never a default member.
        chosen = [name for name in best if name not in COMBINED_FAMILIES
                  and best[name].tags.get("transductive") != "true"]
    else:
        missing = [name for name in families if name not in best]
        if missing:
            split = "" if wanted is None else " split as this run is (" + ", ".join(
                f"{k} {v}" for k, v in wanted.items()) + ")"
            raise UserError(f"--families: no finished run of {', '.join(missing)}{split} "
                            f"(families with one: {', '.join(sorted(best)) or 'none'})")
        chosen = families
    return [member_of(best[name]) for name in chosen]


def default_run(family: str, config, flag: str, instead: str) -> Member:
    """The best finished run of `family` split as `config` is, for a flag left out; else a one-line
    error naming the flag and what to do `instead`."""
    try:
        return best_runs([family], config.experiment, config)[0]
    except UserError:
        raise UserError(f"{flag}: no finished {family} run to default to; {instead}") from None


def split_of(params: dict) -> dict:
    return {key: params.get(key, "None") for key in SPLIT_PARAMS}


def check_same_split(members: list[Member], expected: dict, role: str = "member") -> None:
    """Every member validated on the reviews `expected` (SPLIT_PARAMS of the combining run) names;
    role: what the error calls one (member, teacher)."""
    reference_hash = next((m.params[SPLIT_HASH] for m in members if SPLIT_HASH in m.params), None)
    for member in members:
        differences = [f"{key} {member.params.get(key, 'None')} (not {value})"
                       for key, value in expected.items() if str(member.params.get(key, "None")) != str(value)]
        if SPLIT_HASH in member.params and member.params[SPLIT_HASH] != reference_hash:
            differences.append(f"{SPLIT_HASH} {member.params[SPLIT_HASH][:12]} (not {reference_hash[:12]})")
        if differences:
            raise UserError(f"{role} {member.run_id} ({member.family}) was validated on other reviews: "
                            f"{'; '.join(differences)}; combine runs with the same data, --seed, "
                            "--val-fraction and --limit")


def predictions(member: Member, split: str, ids) -> np.ndarray:
    """P(positive) the member logged for `ids` of a split ("val" or "test"), in that order."""
    try:
        frame = store.logged_predictions(member.run_id, split)
    except UserError as error:
        raise UserError(str(error).replace(f"run {member.run_id}", f"member {member.run_id} ({member.family})", 1)) \
            from None
    by_id = dict(zip(frame["id"], frame["prob_positive"]))
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise UserError(f"member {member.run_id} ({member.family}): {store.PREDICTION_FILES[split]} lacks "
                        f"{len(missing)} of the {len(ids)} {split} reviews (e.g. {missing[0]})")
    return np.array([by_id[i] for i in ids], dtype=np.float64)


def logit(probs: np.ndarray) -> np.ndarray:
    clipped = np.clip(probs, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def features(members: list[Member], split: str, ids) -> np.ndarray:
    """[reviews, members]: each member's logit of P(positive)."""
    return np.stack([logit(predictions(member, split, ids)) for member in members], axis=1)


@dataclass
class Stacker:
    """Logistic regression on the members' logits."""
    coef: np.ndarray
    intercept: float

    def predict(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(logits @ self.coef + self.intercept)

    def to_json(self, members: list[Member]) -> str:
        return json.dumps({"members": [{"run_id": m.run_id, "family": m.family} for m in members],
                           "coef": self.coef.tolist(), "intercept": self.intercept}, indent=2)


def fit_stacker(val_logits: np.ndarray, val_labels: np.ndarray, seed: int) -> tuple[Stacker, np.ndarray]:
    """(the stacker fitted on all validation reviews, out-of-fold P(positive) of each validation review).

    The out-of-fold probabilities (5 folds) say how the stacker does on reviews
    it was not fitted on: the honest validation accuracy of an ensemble.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    model = LogisticRegression(C=1.0, max_iter=1000)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    out_of_fold = cross_val_predict(model, val_logits, val_labels, cv=folds, method="predict_proba")[:, 1]
    model.fit(val_logits, val_labels)
    return Stacker(model.coef_[0].astype(np.float64), float(model.intercept_[0])), out_of_fold
