"""Tracking against a real SQLite MLflow store: what a run holds (params, metrics, datasets,
system metrics, validation predictions), the experiment's kind, and how a run ends."""

import hashlib
import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from imdb_sentiment import tracking

from tests.support import PYTHON, REPO, finished_run


def test_finished_run_holds_params_metrics_artifacts(mlflow_store, tmp_path):
    (tmp_path / "note.txt").write_text("hello")
    with tracking.start_run("ok", {"family": "lstm", "model": "bilstm"}, {"lr": 0.1, "seed": 3}):
        tracking.log_epoch(1, {"val_acc": 0.5})
        tracking.log_epoch(2, {"val_acc": 0.75})
        tracking.log_final({"test_acc": 0.7})
        tracking.log_file(tmp_path / "note.txt")
    client, run = finished_run(mlflow_store, "ok")
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1", "seed": "3"}
    assert run.data.tags["family"] == "lstm"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "val_acc")] == [0.5, 0.75]
    assert run.data.metrics["test_acc"] == 0.7
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]
    # a local store keeps artifacts beside its database, not in the cwd
    assert run.info.artifact_uri.startswith((tmp_path / "mlflow" / "artifacts").as_uri())


def test_provenance_names_commit_packages(mlflow_store):
    info = tracking.provenance()
    assert len(info["git_commit"]) == 40
    assert isinstance(info["git_dirty"], bool)
    assert info["version.torch"].startswith("2.")


@pytest.mark.parametrize("error, status", [(ValueError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")])
def test_a_run_that_raises_is_never_finished(mlflow_store, error, status):
    with pytest.raises(type(error)):
        with tracking.start_run(f"ends-{status}", {"family": "lstm"}):
            raise error
    _, run = finished_run(mlflow_store, f"ends-{status}")
    assert run.info.status == status
    assert mlflow.active_run() is None


@pytest.mark.slow
def test_sigterm_mid_training_leaves_the_run_killed(mlflow_store, tiny_data_dir, tmp_path):
    command = [PYTHON, "train/lstm.py", "--data-dir", str(tiny_data_dir), "--epochs", "100000",
               "--patience", "0", "--embeddings", "random", "--hidden-size", "4", "--embedding-dim", "4",
               "--no-progress", "--run-name", "to-kill"]
    stdout_path, stderr_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:  # a pipe left unread fills
        process = subprocess.Popen(command, cwd=REPO, env=os.environ.copy(), stdout=stdout, stderr=stderr)
    try:
        client = MlflowClient(mlflow_store)
        deadline = time.time() + 180
        while time.time() < deadline:  # wait until it is training: an epoch was logged
            experiment = client.get_experiment_by_name("test")
            runs = experiment and client.search_runs([experiment.experiment_id])
            if runs and client.get_metric_history(runs[0].info.run_id, "val_acc"):
                break
            assert process.poll() is None, stderr_path.read_text()
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 143, stderr_path.read_text()  # 128 + SIGTERM, as a shell says
    finally:
        process.kill()
    _, run = finished_run(mlflow_store, "to-kill")
    assert run.info.status == "KILLED"
    assert stderr_path.read_text().splitlines()[-1] == (
        f"interrupted (SIGTERM): MLflow run {run.info.run_id} (to-kill) ended KILLED")


def _interrupt(signum):
    if signum == signal.SIGINT:
        raise KeyboardInterrupt  # what Python's own SIGINT handler raises on Ctrl-C
    os.kill(os.getpid(), signum)  # start_run's handler turns it into tracking.Terminated
    time.sleep(10)


def _fail_unhandled_sigterm(signum, frame):
    raise AssertionError("SIGTERM reached the test: start_run did not handle it")


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_script_exits_128_plus_signal_naming_the_killed_runs(mlflow_store, capsys,
                                                                         signum, status):
    from imdb_sentiment.errors import run_main

    def main(argv):
        with tracking.start_run("outer", {}):
            with tracking.start_run("inner", {}, nested=True):
                _interrupt(signum)

    previous = signal.signal(signal.SIGTERM, _fail_unhandled_sigterm)
    try:
        with pytest.raises(SystemExit) as caught:
            run_main(main, [])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert caught.value.code == status
    (_, outer), (_, inner) = finished_run(mlflow_store, "outer"), finished_run(mlflow_store, "inner")
    assert outer.info.status == inner.info.status == "KILLED"
    said = [line for line in capsys.readouterr().err.splitlines() if "interrupted" in line]
    assert said == [f"interrupted ({signal.Signals(signum).name}): MLflow runs {inner.info.run_id} (inner), "
                    f"{outer.info.run_id} (outer) ended KILLED"]


def test_sigterm_in_the_middle_of_a_store_write_waits_for_its_end(mlflow_store, monkeypatch):
    # CI: a SIGTERM landing inside log_metrics's SQLite transaction left the database locked, so the
    # run could not be ended KILLED (exit 1, the run RUNNING). The signal now waits for the write.
    real_log_metrics = mlflow.log_metrics

    def log_metrics_signalled_midway(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # start_run's handler runs here, before the write
        return real_log_metrics(*args, **kwargs)

    monkeypatch.setattr(mlflow, "log_metrics", log_metrics_signalled_midway)
    with pytest.raises(tracking.Terminated):
        with tracking.start_run("signalled", {}):
            tracking.log_epoch(1, {"val_acc": 0.75})
            raise AssertionError("Terminated is raised as the write ends, not later")
    client, run = finished_run(mlflow_store, "signalled")
    assert run.info.status == "KILLED"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "val_acc")] == [0.75]  # the write is whole


def test_the_experiment_is_of_kind_custom_model_development_new_or_old(mlflow_store):
    client = MlflowClient(mlflow_store)
    client.create_experiment("made-before-the-tag")
    for name in ("made-before-the-tag", "made-now"):
        tracking.configure(experiment=name)
        assert client.get_experiment_by_name(name).tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_run_records_system_metrics_while_it_runs(mlflow_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5")
    with tracking.start_run("busy", {"family": "lstm"}):
        time.sleep(2)
    _, run = finished_run(mlflow_store, "busy")
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(run.data.metrics)


def test_a_training_run_logs_its_data_and_validation_predictions(mlflow_store, tiny_data_dir, tmp_path):
    from imdb_sentiment import metrics
    from imdb_sentiment.data import load_splits
    from imdb_sentiment.cli import train

    train("tfidf", ["--data-dir", str(tiny_data_dir), "--run-name", "with-data", "--C", "0.05"])
    client, run = finished_run(mlflow_store, "with-data")
    splits = load_splits(tiny_data_dir)
    # The datasets the runs table's Dataset column shows: one per split, with its source file.
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"training", "validation", "test"}
    assert inputs["training"].source == inputs["validation"].source == \
        f'{{"uri": "{(tiny_data_dir / "labeledTrainData.tsv").resolve().as_uri()}"}}'
    assert (tiny_data_dir / "testData.tsv").resolve().as_uri() in inputs["test"].source
    assert len({d.digest for d in inputs.values()}) == 3 and inputs["validation"].name == "imdb-validation"
    assert f'"num_rows": {len(splits.val)}' in inputs["validation"].profile
    # val_predictions.csv: the validation reviews in the split's order, and the hash of their ids.
    folder = client.download_artifacts(run.info.run_id, "", str(tmp_path))
    val = pd.read_csv(f"{folder}/val_predictions.csv", dtype={"id": str})
    assert list(val.columns) == ["id", "label", "prob_positive"]
    assert list(val["id"]) == list(splits.val["id"]) and list(val["label"]) == list(splits.val["label"])
    assert run.data.params["val_split_sha256"] == hashlib.sha256("\n".join(splits.val["id"]).encode()).hexdigest()
    # The metrics beside test_acc, from the logged test predictions; the threshold from validation.
    test = pd.read_csv(f"{folder}/predictions.csv")
    labels, probs = test["label"], test["prob_positive"]
    assert np.ptp(probs) > 0.01 and 0 < metrics.log_loss(labels, probs) < 0.69
    for name, value in {"test_acc": metrics.accuracy(labels, probs), "test_f1": metrics.f1(labels, probs),
                        "test_mcc": metrics.mcc(labels, probs), "test_log_loss": metrics.log_loss(labels, probs),
                        "test_brier": metrics.brier(labels, probs),
                        "best_threshold": metrics.best_threshold(val["label"], val["prob_positive"])}.items():
        assert run.data.metrics[name] == pytest.approx(value, abs=1e-5), name


def test_runs_with_the_same_split_share_its_hash_and_others_do_not(mlflow_store, tiny_data_dir):
    from imdb_sentiment.data import load_splits
    from imdb_sentiment.reporting import log_data

    hashes = {}
    for name, seed, fraction in (("a", 1, 0.2), ("again", 1, 0.2), ("seed", 2, 0.2), ("fraction", 1, 0.3)):
        with tracking.start_run(name, {"family": "tfidf"}):
            log_data(load_splits(tiny_data_dir, fraction, seed), tiny_data_dir)
        hashes[name] = finished_run(mlflow_store, name)[1].data.params["val_split_sha256"]
    assert hashes["a"] == hashes["again"]
    assert len({hashes["a"], hashes["seed"], hashes["fraction"]}) == 3
