"""Two workers at once on one study: PostgreSQL storage, one shared MLflow tracking server.

Needs OPTUNA_TEST_POSTGRES_URL (CI: `export OPTUNA_TEST_POSTGRES_URL=$(bash .ci/postgres.sh | tail -1)`).
Without it the test fails, unless IMDB_ALLOW_NO_POSTGRES=1 makes it skip.
"""

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.support import PYTHON, REPO
from tests.support import TINY_LSTM, check_budget_records, free_port, wait_for_http

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # subprocess workers and an MLflow server

EXPERIMENT = "search-distributed"


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("OPTUNA_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("IMDB_ALLOW_NO_POSTGRES") == "1":
        pytest.skip("no PostgreSQL: OPTUNA_TEST_POSTGRES_URL is unset and IMDB_ALLOW_NO_POSTGRES=1")
    pytest.fail("OPTUNA_TEST_POSTGRES_URL is unset: run (as root) "
                "`export OPTUNA_TEST_POSTGRES_URL=$(bash .ci/postgres.sh | tail -1)`, "
                "or set IMDB_ALLOW_NO_POSTGRES=1 to skip this test")


@pytest.fixture
def mlflow_server(tmp_path) -> str:
    """A real MLflow tracking server on a free localhost port, as the workers' shared store."""
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", server)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # a throw-away store: no need for a graceful stop
        server.wait(timeout=30)


def run_workers(command, env, count=2) -> list[str]:
    """Start `count` identical workers at once; their outputs once all have exited 0."""
    workers = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for _ in range(count)]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-4000:]
    return outputs


def test_two_workers_share_one_study(postgres_url, mlflow_server, tiny_data_dir):
    from imdb_sentiment.search import budget_of, storage_url, trial_cost

    study_name = f"distributed-{uuid.uuid4().hex[:8]}"
    storage = storage_url(postgres_url)
    # PYTHONPATH: the workers import this checkout's package, wherever the venv's editable install points.
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT,
           "PYTHONPATH": str(REPO)}

    def command(*extra):
        return [PYTHON, "search/max_length.py", "--family", "lstm", "--data-dir", str(tiny_data_dir),
                "--storage", postgres_url, "--study-name", study_name, *TINY_LSTM, *extra]

    try:
        # 1. A count cap shared by both workers: exactly 4 trials, not 4 each.
        run_workers(command("--n-trials", "4", "--budget-gpu-hours", "1"), env)
        trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
        assert [t.number for t in trials] == [0, 1, 2, 3]
        assert all(t.state.name == "COMPLETE" for t in trials)
        assert len({t.user_attrs["worker"] for t in trials}) == 2, "both workers ran trials"

        # 2. A budget shared by both: room for 1.5 more trials by the mean so far. The first worker
        #    to check starts one; the other sees that trial's reservation and starts none (or more
        #    if trials finish well under the estimate: no count is asserted beyond the first).
        before = budget_of(trials)
        budget = before.spent + 1.5 * before.estimate
        outputs = run_workers(command("--n-trials", "100", "--budget-gpu-hours", repr(budget)), env)
        assert all("no further trial: budget" in output for output in outputs)
        trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
        numbers = [t.number for t in trials]
        assert numbers == list(range(len(trials))) and len(trials) >= 5, numbers
        assert all(t.state.name == "COMPLETE" for t in trials), [t.state.name for t in trials]
        check_budget_records(trials[4:], budget)
        after = budget_of(trials)
        assert after.spent + after.estimate > budget
        # What a worker had running at the limit may finish: at most one trial per worker past it.
        assert after.spent <= budget + 2 * max(trial_cost(t) for t in trials)

        # MLflow: one parent, one child per trial, none lost or duplicated, all under that parent.
        client = MlflowClient(tracking_uri=mlflow_server)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        runs = client.search_runs([experiment.experiment_id], f"tags.study = '{study_name}'", max_results=1000)
        parents = [r for r in runs if r.data.tags.get("study_parent") == "true"]
        children = [r for r in runs if r.data.tags.get("study_parent") != "true"]
        assert len(parents) == 1
        parent = parents[0]
        assert sorted(int(c.data.tags["trial_number"]) for c in children) == numbers
        assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
        assert {t.user_attrs["mlflow_run_id"] for t in trials} == {c.info.run_id for c in children}
        assert all(c.info.status == "FINISHED" and c.data.tags["trial_state"] == "FINISHED" for c in children)
        assert "optuna:optuna@" not in parent.data.tags["storage"] and "@127.0.0.1" in parent.data.tags["storage"]
        assert parent.data.metrics["n_trials_finished"] == len(trials)
        assert parent.data.metrics["device_hours_spent"] == pytest.approx(after.spent)
    finally:
        try:
            optuna.delete_study(study_name=study_name, storage=storage)
        except KeyError:
            pass
