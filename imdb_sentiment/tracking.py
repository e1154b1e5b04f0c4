"""MLflow behind a few functions: scripts never call the MLflow client directly.

    with start_run(run_name, tags, params):   # FINISHED / FAILED / KILLED
        log_epoch(epoch, {...}); log_final({...}); log_file(path)

A run that raises ends FAILED; Ctrl-C or SIGTERM ends it KILLED; only a run
that returns normally is FINISHED. A run records system metrics (CPU, memory,
disk, network; GPU when pynvml is there) every 10 s while it trains.

This module writes runs; store.py reads them, model_registry.py finds logged
models and registers them.
"""

import functools
import json
import logging
import platform
import signal
import subprocess
import sys
import tempfile
import warnings
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

from . import paths
from .config import applicable

# The MLflow UI shows an experiment of this kind as model training (runs, models, datasets)
# rather than asking what it is for.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}

_PACKAGES = ("torch", "transformers", "peft", "optuna", "mlflow", "gensim", "scikit-learn",
             "numpy", "pandas", "bitsandbytes")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that runs end KILLED, not FINISHED.

    `signum` tells run_main which exit status (128 + signum) and name to report.
    """

    signum = signal.SIGTERM


class _Writing:
    """How deep this process is in whole_write blocks, and a SIGTERM that came during one."""
    depth = 0
    pending: int | None = None


def _raise_terminated(signum, frame):
    if _Writing.depth:  # mid-write: raised once the write is whole
        _Writing.pending = signum
        return
    raise Terminated(f"signal {signum}")


@contextmanager
def whole_write():
    """A write to the store that SIGTERM does not cut in half: the signal waits for its end.

    Raised in the middle of a SQLite write, Terminated left the write's transaction holding
    the database lock, so ending the run KILLED then failed with "database is locked" and
    the run stayed RUNNING (seen in test_tracking's SIGTERM test on a loaded machine)."""
    _Writing.depth += 1
    try:
        yield
    finally:
        _Writing.depth -= 1
        if not _Writing.depth and _Writing.pending is not None:
            signum, _Writing.pending = _Writing.pending, None
            raise Terminated(f"signal {signum}")


def _whole(write):
    """write(...) inside whole_write()."""
    @functools.wraps(write)
    def whole(*args, **kwargs):
        with whole_write():
            return write(*args, **kwargs)
    return whole


def _artifact_location_for(uri: str) -> str | None:
    """A local store keeps its artifacts beside its database, not in the cwd."""
    database = paths.sqlite_file(uri)
    return (database.parent / "artifacts").resolve().as_uri() if database is not None else None


_SERVER_SCHEMES = ("http", "https")
STORE_TIMEOUT_SECONDS = 5


def _known_schemes() -> set[str]:
    """The URI schemes this MLflow has a tracking store for (its own, and any plugin's)."""
    try:
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry
        return set(_tracking_store_registry._registry)
    except (ImportError, AttributeError):  # another MLflow: take its word later
        return set()


def check_store(uri: str | None = None) -> str:
    """The tracking URI, checked before anything loads: a server that does not answer, a refused
    connection, an unknown host or a scheme MLflow does not know is one line (UserError) naming
    the URI and what to do, within seconds, rather than MLflow's minutes of retries and a
    traceback. A run's own requests keep MLflow's retries (an outage mid-run is survived)."""
    import urllib.error
    import urllib.request

    from .errors import UserError

    uri = uri or paths.default_tracking_uri()
    scheme = urlparse(uri).scheme.split("+")[0]
    fix = "start it, or unset MLFLOW_TRACKING_URI to use the local store mlflow/mlflow.db"
    if scheme in _SERVER_SCHEMES:
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=STORE_TIMEOUT_SECONDS):
                pass
        except urllib.error.HTTPError as error:
            if error.code in (502, 503, 504):  # a proxy or gateway saying the server behind it is not there
                raise UserError(f"MLFLOW_TRACKING_URI={uri}: no tracking server answers there (HTTP "
                                f"{error.code} from a proxy); {fix}") from None
            # anything else answered: a server without /health, say; MLflow will tell the rest
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise UserError(f"MLFLOW_TRACKING_URI={uri}: no tracking server answers there ({reason}); "
                            f"{fix}") from None
    elif len(scheme) > 1 and _known_schemes() and scheme not in _known_schemes():  # c:\... is a path
        raise UserError(f"MLFLOW_TRACKING_URI={uri}: unknown scheme {scheme!r}; expected sqlite:///<file>, "
                        "file:///<folder>, http(s)://<host>:<port> of a tracking server, or a database URL")
    return uri


@contextmanager
def _store_lock(uri: str):
    """An exclusive lock beside a local SQLite store, held while a process creates or migrates it:
    MLflow's schema migration run by two processes at once on a new store loses one of them
    (alembic: "Online migration expected to match one row"). A no-op for other stores."""
    import fcntl

    database = paths.sqlite_file(uri)
    try:
        if database is None:
            raise FileNotFoundError
        database.parent.mkdir(parents=True, exist_ok=True)
        handle = open(database.with_name(database.name + ".lock"), "a")
    except OSError:  # not SQLite, or a read-only folder where nobody can create a store
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_store(uri: str):
    """An MlflowClient of the store at `uri`, created first if it is new, by one process at a
    time (_store_lock). Once created, SQLite writers wait for each other: MLflow sets SQLite's
    busy_timeout to 20 s on every session it opens (mlflow/store/db/utils.py)."""
    from mlflow import MlflowClient

    with _store_lock(uri):
        return MlflowClient(tracking_uri=uri)  # builds the store (tables, migrations) on first use


# Processes writing to one SQLite store at once beyond which it is the wrong store: SQLite lets
# one writer in at a time, and each waits at most MLflow's 20 s busy_timeout (six at once are
# tested; a study with many workers or NPROC runs add up quickly).
SQLITE_WRITERS = 8


def note_sqlite_writers(uri: str) -> int:
    """Count this process among the live ones writing to a local SQLite store (a file per process
    in <db>.writers/, removed at exit, stale ones pruned); past SQLITE_WRITERS, say in one line
    that a tracking server is the store for such a load. Returns how many there are."""
    import atexit
    import os

    database = paths.sqlite_file(uri)
    if database is None:
        return 0
    folder = database.with_name(database.name + ".writers")
    mine = folder / str(os.getpid())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not mine.exists():
            mine.touch()
            atexit.register(mine.unlink, missing_ok=True)
        live = 0
        for entry in folder.iterdir():
            try:
                os.kill(int(entry.name), 0)
                live += 1
            except (ValueError, ProcessLookupError):
                entry.unlink(missing_ok=True)
            except PermissionError:  # another user's live process
                live += 1
    except OSError:  # a read-only store folder: nobody writes there
        return 0
    if live > SQLITE_WRITERS:
        print(f"note: {live} processes write to the SQLite store {uri} at once; past {SQLITE_WRITERS} it "
              "makes them wait and may fail them: run a tracking server (mlflow server --backend-store-uri "
              f"{uri}) and set MLFLOW_TRACKING_URI=http://127.0.0.1:5000", flush=True)
    return live


def configure(tracking_uri: str | None = None, experiment: str | None = None) -> str:
    """Point MLflow at the store and experiment (created, or tagged, as EXPERIMENT_KIND);
    returns the experiment id."""
    import mlflow

    uri = tracking_uri or paths.default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    name = experiment or paths.experiment_name()
    note_sqlite_writers(uri)
    open_store(uri)
    found = mlflow.get_experiment_by_name(name)
    if found is None:
        try:
            experiment_id = mlflow.create_experiment(name, artifact_location=_artifact_location_for(uri),
                                                     tags=EXPERIMENT_KIND)
        except Exception:  # created meanwhile by a concurrent worker
            found = mlflow.get_experiment_by_name(name)
            if found is None:
                raise
    if found is not None:
        experiment_id = found.experiment_id
        for key, value in EXPERIMENT_KIND.items():  # an experiment made before the tag existed
            if found.tags.get(key) != value:
                mlflow.MlflowClient().set_experiment_tag(experiment_id, key, value)
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
    quiet_mlflow()
    run = mlflow.start_run(run_id=run_id, run_name=run_name, nested=nested,
                           parent_run_id=parent_run_id, tags={k: str(v) for k, v in tags.items()},
                           log_system_metrics=True)
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


def quiet_mlflow() -> None:
    """No MLflow progress bars ("Downloading artifacts": logging a model validates its input
    example by downloading the model back, several bars a run) and no system-metrics start/stop
    lines. Warnings, errors and MLflow's one-line notes stay; the run's result is printed after
    them all (runs.run_family)."""
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)


def run_params(config, extra: dict | None = None) -> dict:
    """The resolved config, flattened, plus provenance: logged once at run start. A field the run
    does not use (an LSTM's --num-capsules) is left out (config.applicable)."""
    params = applicable(config)
    params.update(provenance())
    params.update(extra or {})
    return params


@_whole
def log_params(params: dict) -> None:
    import mlflow

    # MLflow caps a param value's length; a longer one is cut, not an error.
    mlflow.log_params({k: (str(v)[:6000] if v is not None else "None") for k, v in params.items()})


@_whole
def set_tags(tags: dict) -> None:
    import mlflow

    mlflow.set_tags({k: str(v) for k, v in tags.items()})


@_whole
def log_epoch(epoch: int, metrics: dict) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=epoch)


@_whole
def log_final(metrics: dict) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})


def log_file(path: Path, artifact_dir: str | None = None) -> None:
    import mlflow

    mlflow.log_artifact(str(path), artifact_path=artifact_dir)


def log_config_file(path: str | Path) -> None:
    """The --config file a run's flags were read from, as it was: the artifact config/<its name>."""
    log_file(Path(path), "config")


def log_text(text: str, name: str) -> None:
    import mlflow

    mlflow.log_text(text, name)


def log_figure(figure, name: str) -> None:
    import mlflow

    mlflow.log_figure(figure, name)


def log_dict(data: dict, name: str) -> None:
    log_text(json.dumps(data, indent=2, default=str), name)


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


@_whole
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


@_whole
def log_datasets(splits: list[tuple[str, str, object, Path]]) -> None:
    """Each (context, name, rows, source file) as an MLflow dataset input of the active run: the
    runs table's Dataset column and the run page show them. MLflow keeps a dataset's schema,
    row count, digest (of the rows) and source; not the rows themselves."""
    import mlflow
    import mlflow.data
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json

    def local_file(path):
        # Named as a local source outright: resolving a bare path warns that two sources could read it.
        return get_dataset_source_from_json(json.dumps({"uri": Path(path).resolve().as_uri()}), "local")

    with warnings.catch_warnings():  # the hint that integer columns cannot hold missing values: ours hold none
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        datasets = [mlflow.data.from_pandas(rows, source=local_file(source), name=name,
                                            targets="label" if "label" in rows.columns else None)
                    for _, name, rows, source in splits]
        mlflow.log_inputs(datasets, [context for context, *_ in splits], [None] * len(splits))
