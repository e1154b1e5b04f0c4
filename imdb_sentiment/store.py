"""The one reader of the MLflow store: runs in the lab's terms, and the run that stands for a family.

    store = RunStore(uri, experiment); runs = store.runs()
    best_run(runs, family="lstm")      # the rule every consumer uses

The tables, plots, `make register`, the ensemble's and distill's members and
teacher all read runs through here, as plain `Run` records, so they can be
reasoned about (and tested) without knowing MLflow's API, a change in that
API is fixed here once, and "the best run of a family" means one thing
everywhere (`select_run`). Writing runs is tracking.py; logged models and
the Model Registry are model_registry.py.

What a run means comes from the project's logging contract:
- a model run carries the tag `family` (the row key of the tables);
- a search study has a parent run tagged `study_parent=true` and `study`,
  its trials are child runs tagged `study` and `trial_number`;
- only FINISHED runs count as results (FAILED/KILLED runs never do).
"""

from dataclasses import dataclass, field
from pathlib import Path

from . import paths, tracking
from .errors import UserError
from .families import NOT_CLASSIFIERS

FINISHED = "FINISHED"
_TRIAL_STATE_OF_STATUS = {"FINISHED": "FINISHED", "KILLED": "PRUNED", "FAILED": "FAIL"}
SELECTIONS = ("best", "latest")
_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Run:
    run_id: str
    experiment_id: str
    name: str
    status: str
    start_time: int  # milliseconds since the epoch, as MLflow stores it
    tags: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    @property
    def family(self) -> str | None:
        return self.tags.get("family")

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    @property
    def full_data(self) -> bool:
        """Trained on all the data: no --limit (a run that logs no limit counts as full)."""
        return self.params.get("limit") in (None, "None", "")

    @property
    def is_study_parent(self) -> bool:
        return self.tags.get("study_parent") == "true"

    @property
    def is_trial(self) -> bool:
        """A study's trial, or a run of its confirm step: part of the study, not a model row."""
        return ("study" in self.tags or "confirm_of" in self.tags) and not self.is_study_parent

    @property
    def trial_state(self) -> str:
        """FINISHED, PRUNED, FAIL or RUNNING: the search's `trial_state` tag, else
        read from the status (the search ends a pruned trial's run KILLED)."""
        return self.tags.get("trial_state") or _TRIAL_STATE_OF_STATUS.get(self.status, "RUNNING")


def is_model_run(run: Run) -> bool:
    """A training run of a review classifier (any status); search trials, study parents and
    pretraining runs (families.NOT_CLASSIFIERS) are not."""
    return bool(run.family) and run.family not in NOT_CLASSIFIERS and not run.is_trial and not run.is_study_parent


def model_runs(runs: list[Run]) -> list[Run]:
    """The runs that may stand for a model in the tables: finished ones."""
    return [run for run in runs if run.finished and is_model_run(run)]


def study_parents(runs: list[Run]) -> dict[str, list[Run]]:
    """Study name -> its parent runs (a study resumed later has several), sorted by name."""
    parents: dict[str, list[Run]] = {}
    for run in runs:
        if run.is_study_parent:
            parents.setdefault(run.tags.get("study", run.name), []).append(run)
    return dict(sorted(parents.items()))


def trials_of(runs: list[Run], study: str) -> list[Run]:
    """Every trial of a study, whatever its status: pruned and failed trials are part of the story."""
    return [run for run in runs if run.is_trial and run.tags.get("study") == study]


def latest(runs: list[Run]) -> Run:
    return max(runs, key=lambda r: (r.start_time, r.run_id))


def select_run(runs: list[Run], select: str = "best") -> Run | None:
    """The run that stands for a family among `runs` (the rule, written once): full-data runs
    rank above quick --limit runs (whose small validation set can score anything); then the
    best validation accuracy ("best") or the newest start ("latest"); runs without a validation
    accuracy rank last; ties go to the newer run."""
    if not runs:
        return None
    if select == "latest":
        return max(runs, key=lambda r: (r.full_data, r.start_time, r.run_id))
    return max(runs, key=lambda r: (r.full_data, "best_val_acc" in r.metrics,
                                    r.metrics.get("best_val_acc", 0.0), r.start_time, r.run_id))


def best_runs(runs: list[Run], select: str = "best") -> dict[str, Run]:
    """Family -> the finished model run that stands for it (select_run), families in first-run order."""
    by_family: dict[str, list[Run]] = {}
    for run in model_runs(runs):
        by_family.setdefault(run.family, []).append(run)
    return {family: select_run(members, select) for family, members in by_family.items()}


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


PREDICTION_FILES = {"val": "val_predictions.csv", "test": "predictions.csv"}


def logged_predictions(run_id: str, split: str):
    """The predictions a run logged for a split ("val" or "test"): a DataFrame of id (str), label
    and prob_positive, in the split's order; a run that logged none is one line naming it."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    name = PREDICTION_FILES[split]
    with tracking.scratch_dir() as scratch:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=scratch)
        except (MlflowException, OSError):
            raise UserError(f"run {run_id} logged no {name}: it was trained before runs logged their "
                            "predictions; train it again") from None
        return pd.read_csv(path, dtype={"id": str})


def finished_run(run_id: str, flag: str, why: str) -> Run:
    """The finished run `run_id`, given as `flag`; else one line naming the flag, and `why` only a
    finished run will do."""
    found = get_run(run_id)
    if found is None:
        raise UserError(f"{flag} {run_id}: no such run in {paths.default_tracking_uri()}")
    if found.info.status != FINISHED:
        raise UserError(f"{flag} {run_id}: the run is {found.info.status}; {why}")
    return to_run(found)


class RunStore:
    """One experiment of one tracking store."""

    def __init__(self, tracking_uri: str, experiment_name: str):
        self.tracking_uri = tracking_uri
        self.client = tracking.open_store(tracking_uri)
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is None:
            known = sorted(e.name for e in self.client.search_experiments())
            raise UserError(f"no experiment {experiment_name!r} in {tracking_uri} "
                            f"(experiments there: {', '.join(known) or 'none'}); "
                            "train something first or pass --experiment")
        self.experiment_id = experiment.experiment_id
        self.experiment_name = experiment_name

    def runs(self) -> list[Run]:
        """All runs of the experiment, any status, oldest first."""
        found, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], max_results=_PAGE_SIZE,
                                           order_by=["attributes.start_time ASC"],
                                           page_token=token)
            found.extend(to_run(run) for run in page)
            token = page.token
            if not token:
                return found

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) pairs of a per-epoch metric, in step order."""
        history = self.client.get_metric_history(run_id, key)
        return sorted((m.step, m.value) for m in history)

    def log_file(self, run_id: str, path: Path, artifact_dir: str = "analysis") -> None:
        self.client.log_artifact(run_id, str(path), artifact_path=artifact_dir)

    def run_url(self, ui_url: str, run_id: str) -> str:
        """Where the MLflow UI shows a run (the UI routes after '#')."""
        return f"{ui_url.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{run_id}"


def to_run(mlflow_run) -> Run:
    """A Run record of an MLflow run object."""
    info, data = mlflow_run.info, mlflow_run.data
    return Run(run_id=info.run_id, experiment_id=info.experiment_id,
               name=info.run_name or "", status=info.status,
               start_time=info.start_time or 0, tags=dict(data.tags),
               params=dict(data.params), metrics=dict(data.metrics))


def add_store_arguments(parser) -> None:
    """The options every analysis script shares: which store, experiment and runs."""
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI or the repo's mlflow/mlflow.db)")
    parser.add_argument("--experiment", default=None,
                        help="experiment name (default: $MLFLOW_EXPERIMENT_NAME or imdb-sentiment)")
    parser.add_argument("--select", choices=SELECTIONS, default="best",
                        help="which finished run stands for a family: the best by validation "
                             "accuracy (default) or the latest")


def open_store(args) -> RunStore:
    """The store an analysis script reads (--tracking-uri, --experiment); its runs' artifacts
    (logged_predictions) are read from it too."""
    import mlflow

    store = RunStore(args.tracking_uri or paths.default_tracking_uri(), args.experiment or paths.experiment_name())
    mlflow.set_tracking_uri(store.tracking_uri)
    return store
