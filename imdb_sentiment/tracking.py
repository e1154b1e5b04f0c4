"""MLflow behind a few functions: scripts never call the MLflow client directly.

    with start_run(run_name, tags, params):   # FINISHED / FAILED / KILLED
        log_epoch(epoch, {...}); log_final({...}); log_file(path)

A run that raises ends FAILED; Ctrl-C or SIGTERM ends it KILLED; only a run
that returns normally is FINISHED.
"""

import json
import platform
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

from . import paths
from .config import flatten

_PACKAGES = ("torch", "transformers", "peft", "optuna", "mlflow", "gensim", "scikit-learn",
             "numpy", "pandas", "bitsandbytes")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that runs end KILLED, not FINISHED.

    `signum` tells run_main which exit status (128 + signum) and name to report.
    """

    signum = signal.SIGTERM


def _raise_terminated(signum, frame):
    raise Terminated(f"signal {signum}")


def _artifact_location_for(uri: str) -> str | None:
    """A local store keeps its artifacts beside its database, not in the cwd."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        db_path = Path(uri[len("sqlite:///"):])
        return (db_path.parent / "artifacts").resolve().as_uri()
    if parsed.scheme in ("", "file"):
        return None
    return None


def configure(tracking_uri: str | None = None, experiment: str | None = None) -> str:
    """Point MLflow at the store and experiment; returns the experiment id."""
    import mlflow

    uri = tracking_uri or paths.default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    name = experiment or paths.experiment_name()
    found = mlflow.get_experiment_by_name(name)
    if found is None:
        try:
            experiment_id = mlflow.create_experiment(name, artifact_location=_artifact_location_for(uri))
        except Exception:  # created meanwhile by a concurrent worker
            found = mlflow.get_experiment_by_name(name)
            if found is None:
                raise
            experiment_id = found.experiment_id
    else:
        experiment_id = found.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=paths.REPO_ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance() -> dict:
    """Where a run came from: code version, packages, machine."""
    info = {
        "git_commit": _git("rev-parse", "HEAD") or "unknown",
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for package in _PACKAGES:
        try:
            info[f"version.{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return info


@contextmanager
def start_run(run_name: str | None, tags: dict, params: dict | None = None,
              tracking_uri: str | None = None, experiment: str | None = None,
              nested: bool = False, parent_run_id: str | None = None, run_id: str | None = None):
    """An MLflow run that ends FINISHED only if the block returns normally."""
    import mlflow

    if not nested and parent_run_id is None:
        configure(tracking_uri, experiment)
    in_main_thread = sys.modules["threading"].current_thread() is sys.modules["threading"].main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    run = mlflow.start_run(run_id=run_id, run_name=run_name, nested=nested,
                           parent_run_id=parent_run_id, tags={k: str(v) for k, v in tags.items()})
    try:
        if params:
            log_params(params)
        yield run
    except KeyboardInterrupt as interrupt:
        mlflow.end_run(status="KILLED")
        # Innermost first; run_main names them in its one line on stderr.
        interrupt.killed_runs = [*getattr(interrupt, "killed_runs", []),
                                 (run.info.run_id, run.info.run_name)]
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def run_params(config, extra: dict | None = None) -> dict:
    """The resolved config, flattened, plus provenance: logged once at run start."""
    params = flatten(config)
    params.update(provenance())
    params.update(extra or {})
    return params


def log_params(params: dict) -> None:
    import mlflow

    # MLflow caps a param value's length; a longer one is cut, not an error.
    mlflow.log_params({k: (str(v)[:6000] if v is not None else "None") for k, v in params.items()})


def set_tags(tags: dict) -> None:
    import mlflow

    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_epoch(epoch: int, metrics: dict) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=epoch)


def log_final(metrics: dict) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})


def log_file(path: Path, artifact_dir: str | None = None) -> None:
    import mlflow

    mlflow.log_artifact(str(path), artifact_path=artifact_dir)


def log_text(text: str, name: str) -> None:
    import mlflow

    mlflow.log_text(text, name)


def log_figure(figure, name: str) -> None:
    import mlflow

    mlflow.log_figure(figure, name)


def log_dict(data: dict, name: str) -> None:
    log_text(json.dumps(data, indent=2, default=str), name)


def log_pytorch_model(model, name: str = "model") -> None:
    import mlflow.pytorch

    # Requirements named here: MLflow's inference of them imports and probes
    # the whole environment, which costs more than the logging itself.
    # pickle: the pt2 default traces forward() and needs an input example.
    mlflow.pytorch.log_model(model.cpu(), name=name, serialization_format="pickle",
                             pip_requirements=[f"torch=={metadata.version('torch')}"])


def log_sklearn_model(model, name: str = "model", trusted_types: list[str] | None = None) -> None:
    """trusted_types: our own classes inside the model, which MLflow's skops format must be told of."""
    import mlflow.sklearn

    mlflow.sklearn.log_model(model, name=name, skops_trusted_types=trusted_types or [],
                             pip_requirements=[f"scikit-learn=={metadata.version('scikit-learn')}"])


def log_directory(directory: Path, artifact_dir: str) -> None:
    import mlflow

    mlflow.log_artifacts(str(directory), artifact_path=artifact_dir)


def active_run_id() -> str | None:
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run else None


def scratch_dir():
    """A temporary folder for artifacts before they are logged."""
    return tempfile.TemporaryDirectory(prefix="imdb-artifacts-")


def run_status(run_id: str) -> str | None:
    """RUNNING / FINISHED / FAILED / KILLED, or None when the store has no such run."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient().get_run(run_id).info.status
    except MlflowException:
        return None


def set_run_status(run_id: str, status: str, tags: dict | None = None) -> None:
    """Tag a run that is not this process's active one and set its status.

    For runs ended elsewhere or not at all: a search trial pruned inside its
    training loop (which start_run ends FAILED) is marked KILLED, a trial whose
    worker was killed is ended FAILED by the worker that notices, and a study's
    parent run shows RUNNING while its workers search.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    for key, value in (tags or {}).items():
        client.set_tag(run_id, key, str(value))
    if status == "RUNNING":
        client.update_run(run_id, status="RUNNING")
    else:
        client.set_terminated(run_id, status=status)


def get_run(run_id: str, tracking_uri: str | None = None):
    """The run (info, tags, params) from the store, or None when it has no such run."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri or paths.default_tracking_uri())
    try:
        return MlflowClient().get_run(run_id)
    except MlflowException:
        return None


def download_artifact(run_id: str, path: str, destination: Path) -> Path | None:
    """One artifact (file or folder) of a run, downloaded; None when the run has none there."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    parent = path.rsplit("/", 1)[0] if "/" in path else None
    if path not in {entry.path for entry in client.list_artifacts(run_id, parent)}:
        return None
    return Path(client.download_artifacts(run_id, path, str(destination)))


def load_logged_model(run_id: str, flavour: str, name: str = "model"):
    """The model log_pytorch_model / log_sklearn_model logged in the run
    (flavour "pytorch" or "sklearn"); None when the run logged none."""
    import importlib

    from mlflow.exceptions import MlflowException

    module = importlib.import_module(f"mlflow.{flavour}")
    try:
        return module.load_model(f"runs:/{run_id}/{name}")
    except (MlflowException, OSError):
        return None


def find_run_ids(tags: dict, experiment: str | None = None) -> list[str]:
    """Ids of the runs of the experiment that carry all these tags, newest first."""
    import mlflow

    found = mlflow.get_experiment_by_name(experiment or paths.experiment_name())
    if found is None:
        return []
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
    runs = mlflow.search_runs(experiment_ids=[found.experiment_id], filter_string=query,
                              order_by=["attributes.start_time DESC"], output_format="list")
    return [run.info.run_id for run in runs]
