"""Support for the analysis tests: stores of known runs, and the make targets.

The runs are written straight through MLflow's API, following the project's
logging contract (tags, final metrics, per-epoch metrics) without running any
training code, so the analysis tests stay fast and independent of the trainers.
"""

import subprocess
from pathlib import Path

from imdb_sentiment.paths import REPO_ROOT

START = 1_700_000_000_000  # a fixed clock (ms): which run is "latest" must not depend on timing


def new_store(directory: Path, experiment: str = "imdb-sentiment"):
    """A fresh SQLite store in `directory`: (tracking URI, client, experiment id)."""
    from mlflow.tracking import MlflowClient

    directory.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(
        experiment, artifact_location=(directory / "artifacts").as_uri())
    return uri, client, experiment_id


def log_run(client, experiment_id: str, minute: int, *, status: str = "FINISHED",
            tags: dict | None = None, params: dict | None = None, metrics: dict | None = None,
            curves: dict | None = None, name: str | None = None) -> str:
    """One run started `minute` minutes after START; `curves` maps a metric to its per-epoch values."""
    from mlflow.entities import Metric, Param

    start = START + minute * 60_000
    run = client.create_run(experiment_id, start_time=start, run_name=name,
                             tags={k: str(v) for k, v in (tags or {}).items()})
    run_id = run.info.run_id
    logged = [Metric(k, float(v), start, 0) for k, v in (metrics or {}).items()]
    for key, values in (curves or {}).items():
        logged += [Metric(key, float(v), start + epoch, epoch)
                   for epoch, v in enumerate(values, start=1)]
    client.log_batch(run_id, metrics=logged,
                     params=[Param(k, str(v)) for k, v in (params or {}).items()])
    client.set_terminated(run_id, status=status, end_time=start + 30_000)
    return run_id


def run_make(target: str, *variables: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`make TARGET VAR=value ...` in the repo, as a user runs it."""
    return subprocess.run(["make", "--no-print-directory", target, *variables], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)
