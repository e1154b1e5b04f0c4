"""Shared fixtures: a real MLflow store per test, the real data, tiny Kaggle files."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Tests run many small models, some in subprocesses at once: one thread each
# avoids OpenMP threads spinning against each other on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
PYTHON = sys.executable


def find_real_data() -> Path | None:
    """Kaggle's files: $IMDB_SHARED_DATA, ../shared/data/..., or data/ filled by `make data`."""
    candidates = [os.environ.get("IMDB_SHARED_DATA"),
                  REPO.parent / "shared" / "data" / "word2vec-nlp-tutorial",
                  REPO / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "labeledTrainData.tsv.zip").exists() or \
                candidate and (Path(candidate) / "labeledTrainData.tsv").exists():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    found = find_real_data()
    if found is None:
        pytest.fail("the real data is needed: run `make data` (or set IMDB_SHARED_DATA)")
    return found


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """A real SQLite MLflow store in a temp dir, used by everything the test runs."""
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    (tmp_path / "mlflow").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "test")
    import mlflow
    mlflow.set_tracking_uri(uri)
    yield uri
    if mlflow.active_run():
        mlflow.end_run()


POSITIVE = ["A wonderful, moving film. <br /><br />The acting is superb and I loved every minute!",
            "Great story, great cast: a true classic that I will watch again.",
            "Brilliant and funny; the best movie of the year, highly recommended."]
NEGATIVE = ["Boring and badly acted. <br />I want my two hours back.",
            "The worst film I have seen: a dull plot and awful dialogue.",
            "Terrible. Stupid script, poor effects, a waste of time."]


def write_kaggle_files(folder: Path, n: int = 60) -> Path:
    """Small files in Kaggle's own format: n labelled, n test, n unlabelled reviews."""
    folder.mkdir(parents=True, exist_ok=True)
    labeled, test, unlabeled = ["id\tsentiment\treview"], ["id\treview"], ["id\treview"]
    for i in range(n):
        positive = i % 2 == 0
        pool = POSITIVE if positive else NEGATIVE
        review = pool[i % 3] + f" Review number {i}."
        rating = 8 + i % 3 if positive else 1 + i % 4
        labeled.append(f'"{i}_{rating}"\t{int(positive)}\t"{review}"')
        test.append(f'"{1000 + i}_{rating}"\t"{review} \\"quoted\\""')
        unlabeled.append(f'"{5000 + i}_0"\t"{review}"')
    for name, lines in (("labeledTrainData.tsv", labeled), ("testData.tsv", test),
                        ("unlabeledTrainData.tsv", unlabeled)):
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def tiny_data_dir(tmp_path) -> Path:
    return write_kaggle_files(tmp_path / "kaggle")


def run_script(args, env=None, timeout=900, check=True):
    """Run a repo script or make target as a user would; returns CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(args, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}\nstdout:\n{result.stdout[-4000:]}\n"
                             f"stderr:\n{result.stderr[-4000:]}")
    return result


def finished_run(uri: str, run_name: str, experiment: str = "test"):
    """(client, run) of the one run named run_name in the store at uri."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} in {uri}"
    runs = client.search_runs([found.experiment_id], f"attributes.run_name = '{run_name}'")
    assert len(runs) == 1, f"expected one run named {run_name}, found {len(runs)}"
    return client, runs[0]


def read_submission(client, run_id: str, folder: Path) -> list[list[str]]:
    import csv

    path = Path(client.download_artifacts(run_id, "submission.csv", str(folder)))
    with open(path, newline="") as handle:
        return list(csv.reader(handle))
