"""Where things live: the repo, the data directory, the MLflow store, the local servers.

Every path is relative to the repo (or comes from the environment), never a
literal of one machine.
"""

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from .errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data"
MLFLOW_DIR = REPO_ROOT / "mlflow"
DEFAULT_EXPERIMENT = "imdb-sentiment"
# The MLflow UI and the scoring server listen here only: this machine reaches them, the network does not.
HOST = "127.0.0.1"


def data_dir() -> Path:
    """The data directory: $IMDB_DATA_DIR, else data/ in the repo."""
    return Path(os.environ.get("IMDB_DATA_DIR", DEFAULT_DATA_DIR))


def cache_dir(data_root: Path) -> Path:
    """Preprocessing caches live beside the data they were made from."""
    return Path(data_root) / "cache"


def default_tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else a SQLite store under mlflow/."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    MLFLOW_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{MLFLOW_DIR / 'mlflow.db'}"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite:/// tracking URI (query string left out); None for any other
    store, an in-memory one included."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or parsed.path in ("", "/", "/:memory:"):
        return None
    return Path(uri[len("sqlite:///"):].split("?")[0])


def store_dir() -> Path:
    """Where files that belong with the runs but not in them are kept (checkpoints, a teacher's
    predictions): beside a local MLflow store, else the repo's mlflow/ (a remote tracking
    server keeps none of ours)."""
    uri = default_tracking_uri()
    database = sqlite_file(uri)
    if database is not None:
        return database.parent
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path)
    return MLFLOW_DIR


def experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)


def check_port_free(port: int, retry: str = "make mlflow-ui MLFLOW_PORT={port}") -> None:
    """Fail in one line before MLflow would fail in many; `retry` (with {port}) says what to run instead."""
    if not 0 < port < 65536:
        raise UserError(f"port {port} is not a TCP port (1-65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            raise UserError(f"port {port} on {HOST} is in use; pick another, "
                            f"e.g. {retry.format(port=port + 1)}") from None
