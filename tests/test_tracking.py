"""Tracking against a real SQLite MLflow store: what a run holds, and how it ends."""

import os
import signal
import subprocess
import time

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
