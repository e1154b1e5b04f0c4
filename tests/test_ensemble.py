"""The ensemble family on members logged as real MLflow runs: stacking on validation
predictions only, refusal of members validated on other reviews."""

import csv
import re

import numpy as np
import pytest

from tests.support import finished_run, write_kaggle_files


@pytest.fixture
def data_dir(tmp_path):
    return write_kaggle_files(tmp_path / "kaggle", n=200)


def write_predictions(path, rows, probs):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label", "prob_positive"])
        writer.writerows(zip(rows["id"], rows["label"], (f"{p:.6f}" for p in probs)))


def log_member(store, data_dir, tmp_path, family, noise, seed=42, test_probs=None, limit=None):
    """A finished run that logged val and test predictions: the label blurred by `noise`."""
    import mlflow

    from imdb_sentiment.data import load_splits

    splits = load_splits(data_dir, 0.2, 42, None)
    rng = np.random.default_rng(int(noise * 1000))  # the same noise gives the same predictions

    def blurred(labels):
        return np.clip(0.5 + (labels - 0.5) * 0.6 + rng.normal(0, noise, len(labels)), 0.01, 0.99)

    folder = tmp_path / family
    folder.mkdir(parents=True)
    write_predictions(folder / "val_predictions.csv", splits.val, blurred(splits.val["label"].to_numpy()))
    test = blurred(splits.test["label"].to_numpy()) if test_probs is None else test_probs(splits.test)
    write_predictions(folder / "predictions.csv", splits.test, test)
    mlflow.set_experiment("test")
    with mlflow.start_run(run_name=family) as run:
        mlflow.set_tags({"family": family, "model": family})
        mlflow.log_params({"data_sha256": splits.sha256, "seed": seed, "val_fraction": 0.2, "limit": limit})
        mlflow.log_metrics({"best_val_acc": 1 - noise, "test_acc": 1 - noise})
        mlflow.log_artifacts(str(folder))
    return run.info.run_id


def ensemble(data_dir, *argv):
    from imdb_sentiment.cli import train

    return train("ensemble", ["--data-dir", str(data_dir), "--run-name", "stack", *argv])


def test_stacking_beats_its_members_and_logs_weights(mlflow_store, data_dir, tmp_path, capsys):
    from imdb_sentiment import model_registry

    strong = log_member(mlflow_store, data_dir, tmp_path, "cnn", noise=0.25)
    weak = log_member(mlflow_store, data_dir, tmp_path, "gru", noise=0.45)
    outcome = ensemble(data_dir)  # every family's best run: both
    _, run = finished_run(mlflow_store, "stack")
    # Members that logged no model: the weights are kept, no model is logged, and it says so.
    assert not model_registry.has_review_model(run.info.run_id)
    assert "note: no model logged (the ensemble's weights are in ensemble.json)" in capsys.readouterr().out
    assert run.data.tags["family"] == "ensemble"
    assert set(run.data.params["members"].split(",")) == {strong, weak}
    weights = {k: float(v) for k, v in run.data.params.items() if k.startswith("weight.")}
    assert weights["weight.cnn"] > weights["weight.gru"] > -1  # the stronger member weighs more
    assert outcome.test_acc >= 0.75 and "mean_test_acc" in run.data.metrics
    assert outcome.best_val_acc == run.data.metrics["best_val_acc"]


def test_no_test_prediction_or_label_reaches_the_fit(mlflow_store, data_dir, tmp_path):
    log_member(mlflow_store, data_dir, tmp_path, "cnn", noise=0.25)
    log_member(mlflow_store, data_dir, tmp_path, "gru", noise=0.45)
    ensemble(data_dir, "--families", "cnn,gru", "--run-name", "honest")
    # The same members with every test prediction inverted: the fit must not move.
    log_member(mlflow_store, data_dir, tmp_path / "x", "lstm", noise=0.25, test_probs=lambda t: 1 - t["label"] * 0.9)
    log_member(mlflow_store, data_dir, tmp_path / "x", "tfidf", noise=0.45, test_probs=lambda t: 1 - t["label"] * 0.9)
    ensemble(data_dir, "--families", "lstm,tfidf", "--run-name", "poisoned")
    _, honest = finished_run(mlflow_store, "honest")
    _, poisoned = finished_run(mlflow_store, "poisoned")

    def weights(run):
        return sorted(float(v) for k, v in run.data.params.items() if k.startswith("weight."))

    assert weights(honest) == weights(poisoned)
    assert honest.data.metrics["best_val_acc"] == poisoned.data.metrics["best_val_acc"]
    assert poisoned.data.metrics["test_acc"] < 0.5 < honest.data.metrics["test_acc"]


@pytest.mark.parametrize("difference, message", [
    ({"seed": 7}, "seed 7 (not 42)"),
    ({"limit": 100}, "limit 100 (not None)"),
])
def test_a_member_validated_on_other_reviews_is_refused(difference, message, mlflow_store, data_dir, tmp_path):
    from imdb_sentiment.errors import UserError

    cnn = log_member(mlflow_store, data_dir, tmp_path, "cnn", noise=0.25)
    other = log_member(mlflow_store, data_dir, tmp_path, "gru", noise=0.45, **difference)
    with pytest.raises(UserError, match=re.escape(f"member {other} (gru) was validated on other reviews: {message}")):
        ensemble(data_dir, "--runs", f"{cnn},{other}")
    # Chosen by family, a run split otherwise is passed over, not refused.
    with pytest.raises(UserError, match=re.escape("--families: no finished run of gru split as this run is (seed "
                                                  "42, val_fraction 0.2, limit None)")):
        ensemble(data_dir, "--families", "cnn,gru")


def test_a_quick_run_never_stands_in_for_a_family(mlflow_store, data_dir, tmp_path):
    """The best validation accuracy of a --limit run (a small validation set) does not make it
    the family's member of a full-data ensemble."""
    cnn = log_member(mlflow_store, data_dir, tmp_path, "cnn", noise=0.25)
    gru = log_member(mlflow_store, data_dir, tmp_path, "gru", noise=0.45)
    log_member(mlflow_store, data_dir, tmp_path / "quick", "gru", noise=0.01, limit=100)
    ensemble(data_dir)
    _, run = finished_run(mlflow_store, "stack")
    assert set(run.data.params["members"].split(",")) == {cnn, gru}


def test_bad_member_lists_are_one_line_errors(mlflow_store, data_dir, tmp_path):
    from imdb_sentiment.errors import UserError

    log_member(mlflow_store, data_dir, tmp_path, "cnn", noise=0.25)
    with pytest.raises(UserError, match="--families: no finished run of gru"):
        ensemble(data_dir, "--families", "cnn,gru")
    with pytest.raises(UserError, match="at least 2 members, found 1"):
        ensemble(data_dir)
    with pytest.raises(UserError, match="--runs nope: no such run"):
        ensemble(data_dir, "--runs", "nope,other")
