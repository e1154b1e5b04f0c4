"""The run skeleton every family trains through: one tracked MLflow run.

    run_family(FAMILIES["lstm"], config)      # what train/lstm.py does

Seed, read and split the data, open the MLflow run with the resolved config
and provenance, let the recipe train, predict the test reviews, report, log
the model: written once here. A recipe (imdb_sentiment/recipes/) supplies
only what is special about it, as two functions:

    prepare(config) -> Prepared     checks before any data or weights load
                                    (a bad checkpoint or method stops here,
                                    before a run exists); device; tags
    train(config, prepared, splits, on_epoch) -> Trained
                                    inside the run: fit, and say how to
                                    predict a split and log the model

on_epoch(epoch, metrics, last) runs after each epoch is logged, last true
when no epoch follows (a search trial reports there, and prunes by raising
while epochs remain); parent_run_id nests the run under a study; extra_tags
are added to its tags.

Several processes (torchrun, `make train-<family> NPROC=N`): every process
trains its shard and predicts; only the main one opens, logs and ends the
run. A network family saves a checkpoint after each epoch under
checkpoint_dir(run id) (not in a study's trials); `--resume RUN_ID` reopens
that run and goes on from it; a run that finishes removes its checkpoints
unless --keep-checkpoints.
"""

import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import data, device as devices, model_registry, paths, store, tracking
from .config import flatten
from .errors import UserError
from .families import Family, family_tag
from .reporting import log_data, report_test
from .training import FitResult, FitSettings, NonFiniteLoss, Outcome, free_space_note, has_checkpoint, \
    is_disk_full

# Flags a resumed run may give differently from its first start.
RESUME_MAY_DIFFER = {"resume", "keep_checkpoints", "progress", "device", "run_name", "data_dir", "register",
                     "cpu_threads"}


@dataclass
class Prepared:
    """What a recipe knows before the run starts."""
    device: object              # torch.device
    model: str                  # the run's `model` tag (families.model_label of the checkpoint)
    tags: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    summary: str = ""           # added to the line printed at the start
    context: dict = field(default_factory=dict)  # what train() needs from the checks
    precision: str = "fp32"     # resolved --precision (device.resolve_precision with the recipe's choice)
    checkpoint_dir: Path | None = None  # set by run_family: where fit saves each epoch (None: nowhere)
    resume: bool = False                # set by run_family: fit goes on from checkpoint_dir

    def fit_settings(self, config) -> FitSettings:
        """The shared loop's settings for this run: the config's, with what run_family resolved."""
        return FitSettings.from_config(config, precision=self.precision, checkpoint_dir=self.checkpoint_dir,
                                       resume_checkpoint=self.resume)


@dataclass
class Trained:
    """What a recipe hands back once trained."""
    result: FitResult
    trainable_params: int
    predict: Callable[[str], object]  # split name -> P(positive) per review, in the split's order
    log_model: Callable[[float], None]  # log the model; its label: P(positive) >= this threshold
    # Set where predict() only looks up predictions other models made (an ensemble: the sum of
    # its members' costs); else the skeleton times the test predictions itself.
    predict_seconds_per_1k: float | None = None


def fitted_once(metrics: dict, started: float, on_epoch: Callable | None) -> FitResult:
    """What a model fitted once (no epochs: TF-IDF, doc2vec's classifier, distill) reports as its one
    epoch: `metrics` (val_acc at least) logged as epoch 1, on_epoch called as after a network's
    epoch (a study reports there), and the FitResult the skeleton reports."""
    metrics = {**metrics, "epoch_seconds": time.perf_counter() - started}
    tracking.log_epoch(1, metrics)
    if on_epoch:
        on_epoch(1, metrics, True)
    return FitResult(best_epoch=1, best_val_acc=metrics["val_acc"],
                     history=[{"train_loss": float("nan"), "val_loss": float("nan"), "train_acc": float("nan"),
                               **metrics}],
                     train_seconds=time.perf_counter() - started)


def checkpoint_dir(run_id: str) -> Path:
    """A run's checkpoints: <store folder>/checkpoints/<run id> (paths.store_dir)."""
    return paths.store_dir() / "checkpoints" / run_id


def check_resumable(config, tag: str):
    """The run --resume names, after checking it can go on: it exists, did not finish, is of
    this family, has a checkpoint, and was started with the same flags."""
    run = store.get_run(config.resume)
    where = paths.default_tracking_uri()
    if run is None:
        raise UserError(f"--resume {config.resume}: no such run in {where}")
    if run.info.status == "FINISHED":
        raise UserError(f"--resume {config.resume}: the run finished; there is nothing to resume")
    if run.data.tags.get("family") != tag:
        raise UserError(f"--resume {config.resume}: a {run.data.tags.get('family')} run, not {tag}")
    if not has_checkpoint(checkpoint_dir(config.resume)):
        raise UserError(f"--resume {config.resume}: no checkpoint in {checkpoint_dir(config.resume)} (the run "
                        "ended before its first epoch did, or ran in a study)")
    logged = run.data.params
    differing = [f"--{name.replace('_', '-')} {logged[name]} (now {value})"
                 for name, value in flatten(config).items()
                 if name not in RESUME_MAY_DIFFER and name in logged and logged[name] != str(value)]
    if differing:
        raise UserError(f"--resume {config.resume}: the run started with " + ", ".join(differing)
                        + "; give the flags it started with")
    return run


def run_family(family: Family, config, on_epoch: Callable | None = None, parent_run_id: str | None = None,
               extra_tags: dict | None = None) -> Outcome:
    """Train and test one model of `family` with `config`, logged as one MLflow run."""
    started = time.perf_counter()
    if devices.is_main_process():
        tracking.check_store()  # an unreachable store: one line now, not after the data and weights load
    recipe = family.recipe_of().load()
    tag = family_tag(family, config)
    prepared = recipe.prepare(config)
    devices.init_processes(prepared.device)
    main, processes = devices.is_main_process(), devices.world_size()
    resume_id = getattr(config, "resume", None)
    resumed = check_resumable(config, tag) if resume_id else None
    devices.set_seed(config.seed)
    splits = data.load_splits(config.data_dir, config.val_fraction, config.seed, config.limit)
    if main:
        print(f"{tag}: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test reviews "
              f"on {prepared.device}" + (f" x {processes} processes" if processes > 1 else "")
              + f", {prepared.precision}{prepared.summary}", flush=True)
    tags = {"family": tag, "model": prepared.model, **prepared.tags, "device": prepared.device.type,
            "precision": prepared.precision, "processes": processes, **(extra_tags or {})}
    params = tracking.run_params(config, {"data_sha256": splits.sha256, "device_resolved": str(prepared.device),
                                          "precision_resolved": prepared.precision, "processes": processes,
                                          **prepared.params})
    run_name = resumed.info.run_name if resumed else config.run_name or f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    # Study trials are not resumed (a study retries a lost trial), so they save no checkpoints.
    checkpoints = hasattr(config, "keep_checkpoints") and parent_run_id is None
    run_context = tracking.start_run(run_name, {**tags, "resumed": True} if resumed else tags,
                                     None if resumed else params, experiment=config.experiment,
                                     parent_run_id=parent_run_id, run_id=resume_id) if main else nullcontext()
    trained = None
    try:
        with run_context as run:
            run_id = devices.broadcast(run.info.run_id if main else None)
            if checkpoints:
                prepared.checkpoint_dir, prepared.resume = checkpoint_dir(run_id), bool(resumed)
            if main and not resumed:
                log_data(splits, config.data_dir)
                if config.config_file:
                    tracking.log_config_file(config.config_file)
            trained = recipe.train(config, prepared, splits, on_epoch)
            result = trained.result
            # Every process predicts (its shard, then gathered); the main one reports.
            # The test predictions are timed: the cost of scoring reviews with this model.
            predict_started = time.perf_counter()
            test_probs = trained.predict("test")
            per_1k = (time.perf_counter() - predict_started) * 1000.0 / max(1, len(splits.test)) \
                if trained.predict_seconds_per_1k is None else trained.predict_seconds_per_1k
            val_probs = trained.predict("val")
            final = None
            if main:
                with _disk_full_is_one_line("the run's artifacts"):
                    final = report_test(splits, test_probs, val_probs, result.history, result.best_epoch,
                                        result.best_val_acc, result.train_seconds,
                                        started - result.earlier_seconds, trained.trainable_params,
                                        device_count=devices.device_count(prepared.device),
                                        predict_seconds_per_1k=per_1k)
                    trained.log_model(final["best_threshold"])
            final = devices.broadcast(final)
    except NonFiniteLoss:
        _remove_checkpoints(prepared, keep=False)  # resuming would meet the same loss again
        raise
    finally:
        trained = None  # the model: freed before the next run of this process
        devices.free_memory()
    _remove_checkpoints(prepared, keep=getattr(config, "keep_checkpoints", False))
    if main and config.register:  # once the run ended FINISHED
        model_registry.register(run_id, config.register)
    if main:  # the last line a user sees: the result and where the run is
        print(f"{tag}: test_acc {final['test_acc']:.4f} (val_acc {result.best_val_acc:.4f}), run {run_id} "
              f"FINISHED in experiment {config.experiment or paths.experiment_name()} of "
              f"{paths.default_tracking_uri()} (make mlflow-ui to browse it)", flush=True)
    return Outcome(run_id, result.best_val_acc, final["test_acc"], result.history)


@contextmanager
def _disk_full_is_one_line(what: str):
    """A full disk while writing `what` is a UserError naming where and how much room is left (the
    run then ends FAILED, and nothing is registered), not a traceback."""
    try:
        yield
    except Exception as error:  # OSError, torch's RuntimeError, SQLAlchemy's: is_disk_full decides
        if not is_disk_full(error):
            raise
        where = Path(error.filename) if getattr(error, "filename", None) else paths.store_dir()
        raise UserError(f"no space left on the disk writing {what} ({where}); "
                        f"{free_space_note(where)}: free some, then train again") from None


def _remove_checkpoints(prepared: Prepared, keep: bool) -> None:
    folder = prepared.checkpoint_dir
    if folder is None or not devices.is_main_process() or not Path(folder).exists():
        return
    if keep:
        print(f"checkpoints kept in {folder}", flush=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)
