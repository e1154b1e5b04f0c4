"""The one place the analysis scripts read (and write) MLflow.

Everything else in analysis/ works on plain `Run` records, so tables and
plots can be reasoned about (and tested) without knowing MLflow's API, and a
change in that API is fixed here once.

What a run means comes from the project's logging contract:
- a model run carries the tag `family` (the row key of the tables);
- a search study has a parent run tagged `study_parent=true` and `study`,
  its trials are child runs tagged `study` and `trial_number`;
- only FINISHED runs count as results (FAILED/KILLED runs never do).
"""

from dataclasses import dataclass, field
from pathlib import Path

from imdb_sentiment import paths, tracking
from imdb_sentiment.errors import UserError

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
        return "study" in self.tags and not self.is_study_parent

    @property
    def trial_state(self) -> str:
        """FINISHED, PRUNED, FAIL or RUNNING: the search's `trial_state` tag, else
        read from the status (the search ends a pruned trial's run KILLED)."""
        return self.tags.get("trial_state") or _TRIAL_STATE_OF_STATUS.get(self.status, "RUNNING")


def is_model_run(run: Run) -> bool:
    """A training run of a model (any status); search trials and study parents are not."""
    return bool(run.family) and not run.is_trial and not run.is_study_parent


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


def select_run(runs: list[Run], select: str) -> Run | None:
    """The run that stands for a family; ties go to the newer run."""
    if not runs:
        return None
    if select == "latest":
        return max(runs, key=lambda r: (r.full_data, r.start_time, r.run_id))
    # Full-data runs rank above quick --limit runs (whose small validation set
    # can score anything); runs without a validation accuracy rank last.
    return max(runs, key=lambda r: (r.full_data, "best_val_acc" in r.metrics,
                                    r.metrics.get("best_val_acc", 0.0), r.start_time, r.run_id))


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
            found.extend(_to_run(run) for run in page)
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


def _to_run(mlflow_run) -> Run:
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
    return RunStore(args.tracking_uri or paths.default_tracking_uri(),
                    args.experiment or paths.experiment_name())
