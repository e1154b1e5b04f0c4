"""Runs that share a store: trainings and study workers started at once on a new SQLite MLflow
store and a new Optuna storage, and a tracking URI that nothing answers."""

import os
import subprocess
import time

import pytest

from tests.support import PYTHON, REPO

pytestmark = pytest.mark.slow

TFIDF = ["--limit", "120", "--hash-bits", "16", "--max-iter", "50"]


def test_four_trainings_and_two_study_workers_at_once_on_a_new_store(tiny_data_dir, tmp_path):
    """Before the store was created under a lock, two processes meeting a new SQLite store raced
    in MLflow's schema migration and one died with its run lost."""
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_EXPERIMENT_NAME": "shared",
           "PYTHONPATH": str(REPO)}
    data = ["--data-dir", str(tiny_data_dir)]
    commands = [[PYTHON, "train/tfidf.py", *data, *TFIDF, "--run-name", f"train-{i}"] for i in range(4)]
    commands += [[PYTHON, "search/custom.py", "--family", "tfidf", *data, *TFIDF, "--param", "C=loguniform:1:100",
                  "--storage", storage, "--study-name", "shared", "--n-trials", "3"]
                 for _ in range(2)]
    started = time.monotonic()
    processes = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for command in commands]
    try:
        outputs = [process.communicate(timeout=600) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for command, process, (out, err) in zip(commands, processes, outputs):
        assert process.returncode == 0, f"{command[1]} exited {process.returncode}\n{err[-3000:]}"
        assert "Traceback" not in err, err[-3000:]
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("shared").experiment_id])
    names = sorted(run.info.run_name for run in runs)
    assert [name for name in names if name.startswith("train-")] == [f"train-{i}" for i in range(4)]
    assert all(run.info.status == "FINISHED" for run in runs), [(r.info.run_name, r.info.status) for r in runs]
    trials = [run for run in runs if run.data.tags.get("mlflow.parentRunId")]
    assert len(trials) == 3  # the two workers shared the study's three trials: none lost, none extra
    print(f"6 processes on a new store: {time.monotonic() - started:.0f}s")


@pytest.mark.parametrize("uri, says", [
    ("http://127.0.0.1:9", "no tracking server answers there"),
    ("http://no-such-host.invalid:5000", "no tracking server answers there"),
    ("htp://127.0.0.1:5000", "unknown scheme 'htp'"),
], ids=["refused", "unknown host", "wrong scheme"])
def test_a_tracking_store_that_is_not_there_is_one_line_before_anything_loads(uri, says, tiny_data_dir, tmp_path,
                                                                             monkeypatch):
    from imdb_sentiment import tracking
    from imdb_sentiment.errors import UserError

    monkeypatch.setenv("no_proxy", "*")
    started = time.monotonic()
    with pytest.raises(UserError, match=f"MLFLOW_TRACKING_URI={uri}: {says}"):
        tracking.check_store(uri)
    assert time.monotonic() - started < 10  # MLflow's own retries took 4 min 25 s
    # The script: one line, and no data read (the data folder does not exist), no store created.
    done = subprocess.run([PYTHON, "train/tfidf.py", "--data-dir", str(tmp_path / "no-data"), "--limit", "100"],
                          cwd=REPO, env={**os.environ, "MLFLOW_TRACKING_URI": uri, "no_proxy": "*"},
                          capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith(f"error: MLFLOW_TRACKING_URI={uri}: {says}"), lines[0]
    assert "unset MLFLOW_TRACKING_URI" in lines[0] or "expected sqlite" in lines[0], lines[0]


def test_past_eight_writers_a_sqlite_store_says_to_use_a_tracking_server(tmp_path, capsys):
    import sys

    from imdb_sentiment import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    writers = tmp_path / "mlflow.db.writers"
    writers.mkdir()
    sleepers = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(8)]
    try:
        for sleeper in sleepers:
            (writers / str(sleeper.pid)).touch()
        (writers / "999999999").touch()  # a process that is gone: pruned, not counted
        assert tracking.note_sqlite_writers(uri) == 9
        assert "9 processes write to the SQLite store" in capsys.readouterr().out
        assert not (writers / "999999999").exists()
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
    assert tracking.note_sqlite_writers(uri) == 1 and capsys.readouterr().out == ""
