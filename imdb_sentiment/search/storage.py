"""Where a study lives: the storage URL, Optuna's RDBStorage with heartbeats, and
the lock that makes "is there budget for one more trial? then ask for it" atomic
across workers."""

import fcntl
import hashlib
import importlib.util
import threading
import warnings
from pathlib import Path
from typing import Callable

from .. import paths
from ..errors import UserError


def default_storage() -> str:
    paths.MLFLOW_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{paths.MLFLOW_DIR / 'optuna.db'}"


def storage_url(url: str) -> str:
    """The URL SQLAlchemy should open: `postgresql://` uses psycopg2 when psycopg 3 is not installed."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"--storage {url!r}: not an SQLAlchemy URL (e.g. sqlite:///path/optuna.db or "
                        f"postgresql://user:password@host/db)") from None
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def redact(url: str) -> str:
    """The storage URL without its password: safe for tags and logs."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url)._replace(password=None).render_as_string(hide_password=False)
    except Exception:
        return "<unparseable storage URL>"


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def open_storage(url: str, heartbeat_seconds: int, grace_seconds: int, on_stale: Callable):
    """An RDBStorage with heartbeats; an unreachable database is a one-line error."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    engine_kwargs = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_seconds,
                grace_period=grace_seconds, heartbeat_stale_trial_callback=on_stale)
    except (SQLAlchemyError, ImportError, OSError) as error:
        raise UserError(f"--storage {redact(url)}: cannot open the study storage ({first_line(error)})") from None


class StudyLock:
    """Serialises "is there budget for one more trial? then ask for it" across workers.

    PostgreSQL: a session advisory lock (released if the worker dies). SQLite:
    an flock on a file beside the database (workers on one machine). Other
    backends: this process only, with a warning.
    """

    def __init__(self, url: str, study_name: str):
        self.url, self.study_name = url, study_name
        self._held = False
        self._connection = self._file = None
        self._local = threading.Lock()
        self._key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        if url.startswith("sqlite") and url != "sqlite://" and ":memory:" not in url:
            self._kind = "file"
        elif url.startswith("postgresql"):
            self._kind = "postgres"
        else:
            self._kind = "local"
            print(f"warning: {url.split(':')[0]} storage: the budget check is not atomic across workers "
                  f"(use PostgreSQL or SQLite)", flush=True)

    def acquire(self):
        from sqlalchemy.exc import SQLAlchemyError
        try:
            self._acquire()
        except (SQLAlchemyError, ImportError, OSError) as error:
            raise UserError(f"--storage {redact(self.url)}: cannot open the study storage "
                            f"({first_line(error)})") from None
        self._held = True

    def _acquire(self):
        if self._kind == "file":
            from sqlalchemy.engine import make_url
            path = Path(make_url(self.url).database + ".lock")
            self._file = open(path, "a+")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        elif self._kind == "postgres":
            import sqlalchemy
            engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool,
                                             connect_args={"connect_timeout": 10})
            self._connection = engine.connect()
            self._connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": self._key})
        else:
            self._local.acquire()

    def release(self):
        if not self._held:
            return
        self._held = False
        if self._kind == "file":
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
        elif self._kind == "postgres":
            import sqlalchemy
            self._connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._connection.commit()
            self._connection.close()
        else:
            self._local.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
