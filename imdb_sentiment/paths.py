"""Where things live: the repo, the data directory, the MLflow store.

Every path is relative to the repo (or comes from the environment), never a
literal of one machine.
"""

import os
from pathlib import Path
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data"
MLFLOW_DIR = REPO_ROOT / "mlflow"
DEFAULT_EXPERIMENT = "imdb-sentiment"


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
