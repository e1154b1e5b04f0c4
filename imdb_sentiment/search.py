"""Optuna studies over the same training functions the train/ scripts call.

    python search/max_length.py --family lstm --budget-gpu-hours 2      # = make search-max-length

A search script names a study of the STUDIES registry and calls `main`. Each
trial suggests values under the names of the training config's fields, builds
that config, calls the same run_family as the family's train/ script, and reports validation accuracy per epoch so the pruner can stop
it. What makes a study more than `study.optimize`:

- Budget in device-hours (wall time of a trial x the devices it used; a
  CPU-only trial counts as one device), stored in the study itself as trial
  attributes, so it holds across restarts and across workers. Before a trial
  starts, the spend of ended trials, the reservations of running ones and an
  estimate for the new one (the mean completed trial) must fit the budget.
  That check and `ask` happen under a lock per study (a PostgreSQL advisory
  lock, or a file lock beside a SQLite file), so two workers cannot both take
  the last slot. A trial already running when the budget runs out finishes
  (or is pruned by the pruner). `--n-trials` caps the count the same way.
- Heartbeats: a worker killed mid-trial leaves a RUNNING trial that the next
  worker to start a trial marks FAIL (after the grace period) and runs again
  with the same parameters; its MLflow child run is ended FAILED.
- MLflow: one parent run per study (tag study_parent=true) and one child run
  per trial (tags study, trial_number, trial_state). Re-running the command
  resumes: the same study, the same parent run.
"""

import dataclasses
import fcntl
import hashlib
import importlib.util
import json
import math
import os
import socket
import sys
import threading
import time
import typing
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Literal

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from . import device as devices, paths, tracking
from .config import build_parser, flag, flatten, option, require
from .errors import UserError
from .families import Family, family_tag, resolve

# ---------------------------------------------------------------- registries


# Study name -> {config field: Optuna distribution}: what each study searches.
SEARCH_SPACES = {
    "lora": {"lora_r": CategoricalDistribution([4, 8, 16, 32]),
             "lora_alpha": CategoricalDistribution([8, 16, 32, 64]),
             "lr": FloatDistribution(1e-5, 1e-3, log=True)},
    "rdrop": {"rdrop_alpha": FloatDistribution(0.1, 5.0, log=True)},
    "scl": {"scl_temperature": FloatDistribution(0.05, 1.0, log=True),
            "scl_lambda": FloatDistribution(0.1, 0.9)},
    "max_length": {"max_length": CategoricalDistribution([64, 128, 256, 384, 512])},
}


@dataclass(frozen=True)
class StudySpec:
    family: str                     # the default --family
    requires: dict | None = None    # training settings a family must have for this study (None: any family)

    def check(self, study: str, family: str, settings: dict) -> None:
        wrong = {k: v for k, v in (self.requires or {}).items() if settings.get(k) != v}
        if wrong:
            needs = ", ".join(f"{flag(k)} {v}" for k, v in self.requires.items())
            raise UserError(f"--family {family}: the {study} study is for families trained with {needs} "
                            f"(e.g. {self.family})")


STUDIES = {
    "lora": StudySpec("deberta-lora", {"method": "lora"}),
    "rdrop": StudySpec("rdrop", {"regulariser": "rdrop"}),
    "scl": StudySpec("scl", {"regulariser": "scl"}),
    "max_length": StudySpec("lstm"),
}


# ---------------------------------------------------------------- configuration


@dataclass
class SearchConfig:
    """What every search script accepts, besides the training flags it passes through."""
    family: str = option("lstm", "model family the trials train (as train/<family>.py does)")
    study_name: str | None = option(None, "Optuna study name (default: <study>-<family>); running the "
                                          "same name again resumes that study")
    storage: str | None = option(None, "SQLAlchemy URL of the study storage (default: a SQLite file "
                                       "mlflow/optuna.db); PostgreSQL for workers on several machines")
    budget_gpu_hours: float = option(4.0, "device-hours the whole study may spend, over all workers and "
                                          "restarts (trial wall time x GPUs; a CPU-only trial is one device)")
    n_trials: int = option(20, "at most this many trials in the whole study (budget or count, whichever "
                               "comes first)")
    pruner: Literal["median", "hyperband", "none"] = option("median", "stops trials whose validation "
                                                                      "accuracy lags, epoch by epoch")
    heartbeat_seconds: int = option(60, "a running trial records a heartbeat this often")
    grace_seconds: int | None = option(None, "a trial without heartbeat for this long is marked failed and "
                                             "run again (default: 3 x --heartbeat-seconds)")
    max_retries: int = option(2, "times a trial whose worker died is run again")

    def __post_init__(self):
        require(math.isfinite(self.budget_gpu_hours) and self.budget_gpu_hours > 0, "budget_gpu_hours",
                "a positive number of device-hours", self.budget_gpu_hours)
        require(self.n_trials >= 1, "n_trials", "an integer >= 1", self.n_trials)
        require(self.heartbeat_seconds >= 1, "heartbeat_seconds", "an integer >= 1", self.heartbeat_seconds)
        if self.grace_seconds is None:
            self.grace_seconds = 3 * self.heartbeat_seconds
        require(self.grace_seconds > self.heartbeat_seconds, "grace_seconds",
                f"more than --heartbeat-seconds ({self.heartbeat_seconds})", self.grace_seconds)
        require(self.max_retries >= 0, "max_retries", "an integer >= 0", self.max_retries)
        require(self.study_name is None or self.study_name.strip() != "", "study_name", "a non-empty name",
                self.study_name)


# Training settings that may differ between workers and restarts of one study.
_PER_WORKER = ("data_dir", "device", "progress", "run_name", "experiment")


def _fields_of(cls) -> list:
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name], dataclasses.field(default=f.default, metadata=f.metadata))
            for f in dataclasses.fields(cls) if f.init]


def parse_search_args(study: str, argv, prog: str, description: str):
    """(SearchConfig, training config, Family) from one command line.

    The command line is generated from SearchConfig plus the family's training
    config, minus the fields this study searches (a flag for one of them is an
    error, not silently ignored).
    """
    spec, space = STUDIES[study], SEARCH_SPACES[study]
    argv = list(argv) if argv is not None else sys.argv[1:]
    # The family decides which training flags exist: read it first (help waits for the full parser).
    for name in space:
        if any(arg == flag(name) or arg.startswith(flag(name) + "=") for arg in argv):
            raise UserError(f"{flag(name)}: the {study} study searches it, so it cannot be set")
    pre = build_parser(SearchConfig, prog=prog, defaults={"family": spec.family}).parse_known_args(
        [a for a in argv if a not in ("-h", "--help")])[0]
    family, overrides = resolve(pre.family)
    recipe = family.recipe_of()
    config_cls = recipe.config_class()
    spec.check(study, pre.family, {**family.defaults, **overrides})
    train_fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(space) - train_fields)
    if unknown:
        raise UserError(f"the {study} study searches {', '.join(unknown)}, which the {pre.family} family's "
                        f"config ({config_cls.__name__}) does not have")
    no_gpu = devices.detect_device("auto").type == "cpu"
    cpu_defaults = {k: v for k, v in recipe.cpu_study.items() if k not in space} if no_gpu else {}
    defaults = {"progress": False, **family.defaults, **overrides, "family": spec.family, **cpu_defaults}
    fields = [f for f in _fields_of(SearchConfig)] + \
             [f for f in _fields_of(config_cls) if f[0] not in space and f[0] != "run_name"]
    command_line = dataclasses.make_dataclass("SearchCommandLine", fields)
    parser = build_parser(command_line, prog=prog, description=description, defaults=defaults)
    values = vars(parser.parse_args(argv))
    search_names = {f.name for f in dataclasses.fields(SearchConfig)}
    search = SearchConfig(**{k: v for k, v in values.items() if k in search_names})
    train_config = config_cls(**{k: v for k, v in values.items() if k not in search_names})
    if no_gpu:
        given = {k: values[k] for k in cpu_defaults}
        print(f"note: no GPU here, so a CPU-sized study ({', '.join(f'{flag(k)} {v}' for k, v in given.items())});"
              f" on a GPU machine the same command trains at full size: "
              f"make search-{study.replace('_', '-')} ARGS='--budget-gpu-hours 4'", flush=True)
    return search, train_config, family


# ---------------------------------------------------------------- storage


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


def open_storage(url: str, search: SearchConfig, on_stale: Callable):
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
                url, engine_kwargs=engine_kwargs, heartbeat_interval=search.heartbeat_seconds,
                grace_period=search.grace_seconds, heartbeat_stale_trial_callback=on_stale)
    except (SQLAlchemyError, ImportError, OSError) as error:
        raise UserError(f"--storage {redact(url)}: cannot open the study storage ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
                            f"({_first_line(error)})") from None
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


# ---------------------------------------------------------------- budget


def trial_cost(trial, now: datetime | None = None) -> float:
    """Device-hours a trial spent: recorded at its end, else its wall time so far (or until it was
    marked failed) times its devices."""
    if "device_hours" in trial.user_attrs and trial.state.is_finished():
        return float(trial.user_attrs["device_hours"])
    if trial.datetime_start is None:
        return 0.0
    end = trial.datetime_complete or now or datetime.now()
    return max(0.0, (end - trial.datetime_start).total_seconds()) / 3600 * trial.user_attrs.get("devices", 1)


@dataclass
class Budget:
    spent: float        # device-hours of ended trials
    reserved: float     # of running trials: max(their estimate, what they spent so far)
    estimate: float     # for the next trial: the mean completed trial (else the mean ended one)
    counted: int        # trials that count against --n-trials

    def summary(self) -> str:
        return f"{self.spent:.4f} device-hours spent, {self.reserved:.4f} reserved by running trials"


def budget_of(trials) -> Budget:
    from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        retried = {n for t in trials for n in Retry.retry_history(t)}
    now = datetime.now()
    ended = [t for t in trials if t.state.is_finished()]
    running = [t for t in trials if t.state == TrialState.RUNNING]
    completed = [trial_cost(t) for t in ended if t.state == TrialState.COMPLETE]
    costs = completed or [trial_cost(t) for t in ended]
    return Budget(
        spent=sum(trial_cost(t) for t in ended),
        reserved=sum(max(t.user_attrs.get("estimate_device_hours", 0.0), trial_cost(t, now)) for t in running),
        estimate=sum(costs) / len(costs) if costs else 0.0,
        counted=sum(1 for t in trials if t.state != TrialState.WAITING
                    and not (t.state == TrialState.FAIL and t.number in retried)))


def stop_reason(budget: Budget, search: SearchConfig) -> str | None:
    """Why no further trial may start, or None."""
    if budget.counted >= search.n_trials:
        return f"--n-trials {search.n_trials} reached"
    if budget.spent + budget.reserved + budget.estimate > search.budget_gpu_hours:
        return (f"budget: {budget.summary()}, a trial is estimated at {budget.estimate:.4f}, "
                f"the budget is {search.budget_gpu_hours} device-hours")
    return None


# ---------------------------------------------------------------- the study


def suggest(trial, name: str, distribution):
    """trial.suggest_* for a distribution of the search space."""
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, step=distribution.step,
                                 log=distribution.log)
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high, step=distribution.step,
                                   log=distribution.log)
    raise TypeError(f"unsupported distribution for {name}: {distribution!r}")


def make_pruner(name: str):
    import optuna

    if name == "median":
        # Epoch 1 of a short run says little: compare from epoch 1 on, after 3 trials.
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def space_signature(space: dict) -> dict:
    from optuna.distributions import distribution_to_json
    return {name: json.loads(distribution_to_json(d)) for name, d in sorted(space.items())}


def fixed_settings(config) -> dict:
    """The training settings every trial of a study shares (checked on resume)."""
    return {k: v for k, v in flatten(config).items() if k not in _PER_WORKER}


def check_study_matches(study, study_name: str, attrs: dict) -> None:
    """A resumed study must search the same space with the same training settings."""
    for key, label in (("search_space", "search space"), ("family", "family")):
        if study.user_attrs.get(key) != attrs[key]:
            raise UserError(f"--study-name {study_name}: this study exists with another {label} "
                            f"({json.dumps(study.user_attrs.get(key))}, not {json.dumps(attrs[key])}): "
                            f"use another --study-name")
    stored = study.user_attrs.get("settings", {})
    changed = sorted(k for k in set(stored) | set(attrs["settings"]) if stored.get(k) != attrs["settings"].get(k))
    if changed:
        shown = ", ".join(f"{flag(k)} {stored.get(k)!r} (now {attrs['settings'].get(k)!r})" for k in changed[:3])
        raise UserError(f"--study-name {study_name}: this study was created with {shown}: "
                        f"run it with the same training flags or use another --study-name")


def _redacted_tags(study_name, search, storage, config, family) -> dict:
    return {"study_parent": "true", "study": study_name, "storage": redact(storage),
            "budget_gpu_hours": search.budget_gpu_hours, "family": family, "model": getattr(config, "model", ""),
            "pruner": search.pruner, "n_trials_cap": search.n_trials}


def open_parent_run(study, study_name, search, storage, config, family, attrs) -> str:
    """The study's parent MLflow run: created once, reused on resume (and by every worker)."""
    tags = _redacted_tags(study_name, search, storage, config, family)
    run_id = study.user_attrs.get("mlflow_parent_run_id")
    tracking.configure(experiment=config.experiment)
    if run_id and tracking.run_status(run_id) is not None:
        tracking.set_run_status(run_id, "RUNNING", tags)
        return run_id
    params = {f"search.{k}": v for k, v in flatten(search).items()}
    params.update(tracking.run_params(config, {"search_space": json.dumps(attrs["search_space"])}))
    with tracking.start_run(study_name, tags, params, experiment=config.experiment) as run:
        run_id = run.info.run_id
    study.set_user_attr("mlflow_parent_run_id", run_id)
    tracking.set_run_status(run_id, "RUNNING")
    return run_id


def _child_run_id(trial_number: int, study_name: str, experiment: str | None) -> str | None:
    found = tracking.find_run_ids({"study": study_name, "trial_number": trial_number}, experiment)
    return found[0] if found else None


def _retried_trial_number(trial) -> int | None:
    """The number of the trial this one runs again after its worker died, if any."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry

    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Retry.retried_trial_number(frozen)


def make_objective(study_name, space, config, family, parent_run_id, lock: StudyLock,
                   checked: Callable[[], Budget]):
    """objective(trial): suggest, build the config, train as the script would, report, prune."""
    import optuna

    from .runs import run_family  # torch and the data stack: only once a study runs

    device_count = devices.device_count(devices.detect_device(config.device))

    def objective(trial):
        values = {name: suggest(trial, name, distribution) for name, distribution in space.items()}
        trial_config = dataclasses.replace(config, **values, run_name=f"{study_name}-trial-{trial.number}")
        budget = checked()  # what the budget check before this trial saw, kept for the record
        trial.set_user_attr("devices", device_count)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("estimate_device_hours", budget.estimate)
        trial.set_user_attr("committed_device_hours", budget.spent + budget.reserved)
        lock.release()  # the trial is asked for and its reservation recorded: other workers may go on
        started = time.perf_counter()
        retry_of = _retried_trial_number(trial)
        tags = {"study": study_name, "trial_number": trial.number, "trial_state": "RUNNING",
                **({"retry_of_trial": retry_of} if retry_of is not None else {})}

        def on_epoch(epoch, metrics):
            trial.report(metrics["val_acc"], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: val_acc {metrics['val_acc']:.4f}")

        state, run_id = "FAIL", None
        try:
            outcome = run_family(family, trial_config, on_epoch=on_epoch, parent_run_id=parent_run_id,
                                 extra_tags=tags)
            state, run_id = "FINISHED", outcome.run_id
            return outcome.best_val_acc
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            trial.set_user_attr("device_hours", (time.perf_counter() - started) / 3600 * device_count)
            run_id = run_id or _child_run_id(trial.number, study_name, config.experiment)
            if run_id:
                trial.set_user_attr("mlflow_run_id", run_id)
                # A pruned run stopped on purpose: KILLED, not the FAILED that an exception gives it.
                status = {"FINISHED": "FINISHED", "PRUNED": "KILLED"}.get(state, tracking.run_status(run_id))
                tracking.set_run_status(run_id, status, {"trial_state": state})

    return objective


def stale_trial_handler(study_name: str, experiment: str | None, max_retries: int):
    """For the heartbeat: run a dead worker's trial again and end its MLflow child run FAILED."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retries)

    def on_stale(study, trial):
        print(f"trial {trial.number}: no heartbeat (its worker died); marked FAIL and queued again", flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            retry(study, trial)
        run_id = _child_run_id(trial.number, study_name, experiment)
        if run_id:
            tracking.set_run_status(run_id, "FAILED", {"trial_state": "FAIL", "fail_reason": "no heartbeat"})

    return on_stale


def summarise(study, study_name: str, search: SearchConfig, parent_run_id: str, experiment,
              status: str = "FINISHED") -> dict:
    """Best value, best params and child run, counts and device-hours: printed and logged to the parent."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    budget = budget_of(trials)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(completed, key=lambda t: t.value) if completed else None
    metrics = {"device_hours_spent": budget.spent,
               "n_trials_finished": len(completed),
               "n_trials_pruned": sum(t.state == TrialState.PRUNED for t in trials),
               "n_trials_failed": sum(t.state == TrialState.FAIL for t in trials)}
    tags = {"budget_gpu_hours": search.budget_gpu_hours}
    if best is not None:
        metrics["best_value"] = best.value
        tags["best_trial_number"] = best.number
        tags["best_child_run_id"] = best.user_attrs.get("mlflow_run_id", "")
        # Params cannot change once logged; a resumed study with a new best keeps the tags current.
        tags.update({f"best.{k}": v for k, v in best.params.items()})
    with tracking.start_run(None, {}, run_id=parent_run_id, experiment=experiment):
        tracking.log_final(metrics)
        tracking.set_tags(tags)
        if best is not None:
            _log_best_params(parent_run_id, best.params)
        _log_study_plots(study)
        tracking.log_dict({"best_params": best.params if best else None, **metrics,
                           "trials": [{"number": t.number, "state": t.state.name, "value": t.value,
                                       "params": t.params, "device_hours": trial_cost(t),
                                       "mlflow_run_id": t.user_attrs.get("mlflow_run_id")} for t in trials]},
                          "study_summary.json")
    if status != "FINISHED":
        tracking.set_run_status(parent_run_id, status)
    line = (f"study {study_name}: {metrics['n_trials_finished']} finished, {metrics['n_trials_pruned']} pruned, "
            f"{metrics['n_trials_failed']} failed; {budget.spent:.4f} of {search.budget_gpu_hours} device-hours")
    print(line, flush=True)
    if best is not None:
        print(f"best val_acc {best.value:.4f} (trial {best.number}): {best.params}; "
              f"MLflow run {tags['best_child_run_id']}", flush=True)
    return metrics


def _log_best_params(run_id: str, params: dict) -> None:
    from mlflow.exceptions import MlflowException
    try:
        tracking.log_params({f"best.{k}": v for k, v in params.items()})
    except MlflowException:
        print("note: the best parameters changed since they were logged as params; "
              "the parent run's best.* tags hold the current ones", flush=True)


def _log_study_plots(study) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return
    plots = {"optimization_history.png": optuna.visualization.matplotlib.plot_optimization_history,
             "param_importances.png": optuna.visualization.matplotlib.plot_param_importances}
    for name, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as error:  # e.g. importances need two distinct values
                print(f"note: no {name} ({str(error).splitlines()[0]})", flush=True)
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.tight_layout()
        tracking.log_figure(figure, f"plots/{name}")
        plt.close(figure)


def run_study(study_key: str, search: SearchConfig, config, family: Family) -> dict:
    """Create or resume the study, run trials while budget and --n-trials allow, summarise."""
    import optuna

    space = SEARCH_SPACES[study_key]
    tag = family_tag(family, config)  # bert with --method lora: bert-lora, as its runs are tagged
    study_name = search.study_name or f"{study_key.replace('_', '-')}-{tag}"
    url = storage_url(search.storage or default_storage())
    attrs = {"search_space": space_signature(space), "family": tag, "settings": fixed_settings(config)}
    on_stale = stale_trial_handler(study_name, config.experiment, search.max_retries)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lock = StudyLock(url, study_name)

    with lock:  # also around opening: workers starting at once on a new database race to create its tables
        storage = open_storage(url, search, on_stale)
        study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize",
                                    pruner=make_pruner(search.pruner), load_if_exists=True)
        if "search_space" in study.user_attrs:
            check_study_matches(study, study_name, attrs)
            print(f"resuming study {study_name} ({len(study.get_trials(deepcopy=False))} trials so far)",
                  flush=True)
        else:
            for key, value in attrs.items():
                study.set_user_attr(key, value)
        parent_run_id = open_parent_run(study, study_name, search, url, config, tag, attrs)
    print(f"study {study_name} in {redact(url)}; MLflow parent run {parent_run_id}", flush=True)

    checked = {}
    objective = make_objective(study_name, space, config, family, parent_run_id, lock,
                               lambda: checked["budget"])
    failures_in_a_row = 0
    try:
        while True:
            lock.acquire()
            try:
                # Dead workers' trials first: they are run again before anything new, and their
                # reservation becomes what they really spent.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                trials = study.get_trials(deepcopy=False)
                budget = budget_of(trials)
                reason = stop_reason(budget, search)
                if reason:
                    print(f"no further trial: {reason}", flush=True)
                    break
                checked["budget"] = budget
                # Seeded by the trial count, so one worker repeats itself and workers differ.
                study.sampler = optuna.samplers.TPESampler(seed=config.seed + len(trials))
                study.optimize(objective, n_trials=1)
                failures_in_a_row = 0
            except UserError:
                raise
            except Exception as error:  # one broken trial (e.g. out of memory) does not end the study
                failures_in_a_row += 1
                print(f"trial failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
                      flush=True)
                if failures_in_a_row >= 3:
                    raise UserError(f"3 trials in a row failed, the last with {type(error).__name__}: "
                                    f"{error}; see the log above") from error
            finally:
                lock.release()
    except BaseException as error:
        try:  # what was spent is logged however the worker stops
            summarise(study, study_name, search, parent_run_id, config.experiment,
                      status="KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        except Exception as summary_error:
            print(f"note: the study summary was not logged ({summary_error})", flush=True)
        raise
    return summarise(study, study_name, search, parent_run_id, config.experiment)


def main(study_key: str, argv=None, prog: str | None = None, description: str | None = None) -> dict:
    """A search script's whole body: parse, check, run the study."""
    search, config, family = parse_search_args(study_key, argv, prog or f"search/{study_key}.py", description)
    return run_study(study_key, search, config, family)
