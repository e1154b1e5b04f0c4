"""imdb_sentiment/store.py: the one rule for the run that stands for a family, and every consumer
(the tables, `make register`, the ensemble's members, distill's default teacher) applying it."""

import pytest

from imdb_sentiment import combine, store
from imdb_sentiment.config import EnsembleConfig
from tests.support import log_run, new_store

SPLIT = {"seed": "42", "val_fraction": "0.2"}


def run(family, minute, status="FINISHED", limit=None, **metrics):
    return dict(minute=minute, status=status, tags={"family": family},
                params={**SPLIT, "limit": str(limit)}, metrics={"test_acc": 0.5, **metrics})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A store whose lstm runs make every clause of the rule decide something."""
    uri, client, experiment = new_store(tmp_path_factory.mktemp("store"))
    logged = {
        # the best validation accuracy of the full-data runs: it stands for lstm
        "best": run("lstm", 1, best_val_acc=0.90),
        # newer, worse
        "newer": run("lstm", 2, best_val_acc=0.88),
        # ties "best" and is newer: ties go to the newer run
        "tie": run("lstm", 3, best_val_acc=0.90),
        # a quick --limit run's small validation set scores anything: full data ranks first
        "quick": run("lstm", 4, limit=300, best_val_acc=0.99),
        # never a result: not finished
        "failed": run("lstm", 5, status="FAILED", best_val_acc=1.0),
        # no validation accuracy: ranks last
        "no-val": run("lstm", 6),
        "tfidf": run("tfidf", 7, best_val_acc=0.89),
    }
    ids = {name: log_run(client, experiment, **spec) for name, spec in logged.items()}
    return uri, ids, store.RunStore(uri, "imdb-sentiment").runs()


def test_the_rule_full_data_then_validation_accuracy_then_newer(runs):
    _, ids, found = runs
    lstm = [r for r in store.model_runs(found) if r.family == "lstm"]
    assert store.select_run(lstm).run_id == ids["tie"]
    without_tie = [r for r in lstm if r.run_id != ids["tie"]]
    assert store.select_run(without_tie).run_id == ids["best"]
    assert store.select_run([r for r in lstm if r.run_id in (ids["quick"], ids["no-val"])]).run_id == ids["no-val"]
    assert store.select_run(lstm, "latest").run_id == ids["no-val"]  # newest full-data finished run
    assert store.select_run([]) is None
    assert {f: r.run_id for f, r in store.best_runs(found).items()} == {"lstm": ids["tie"], "tfidf": ids["tfidf"]}


def test_the_ensemble_picks_the_run_the_tables_and_register_pick(runs, monkeypatch):
    uri, ids, found = runs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    config = EnsembleConfig(families="lstm,tfidf")
    members = combine.best_runs(["lstm", "tfidf"], "imdb-sentiment", config)
    assert [m.run_id for m in members] == [ids["tie"], ids["tfidf"]]
    assert [m.run_id for m in members] == [store.best_runs(found)[f].run_id for f in ("lstm", "tfidf")]


def test_a_run_given_by_id_must_exist_and_have_finished(runs, monkeypatch):
    uri, ids, _ = runs
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    from imdb_sentiment.errors import UserError

    assert store.finished_run(ids["best"], "--runs", "why").run_id == ids["best"]
    with pytest.raises(UserError, match=f"^--teacher {ids['failed']}: the run is FAILED; a teacher must have"):
        store.finished_run(ids["failed"], "--teacher", "a teacher must have finished")
    with pytest.raises(UserError, match="^--runs 0123: no such run in sqlite:///"):
        store.finished_run("0123", "--runs", "why")
