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

on_epoch(epoch, metrics) runs after each epoch is logged (a search trial
reports and prunes there by raising); parent_run_id nests the run under a
study; extra_tags are added to its tags.
"""

import time
from dataclasses import dataclass, field
from typing import Callable

from . import data, device as devices, serving, tracking
from .families import Family, family_tag
from .reporting import log_data, report_test
from .training import FitResult, Outcome


@dataclass
class Prepared:
    """What a recipe knows before the run starts."""
    device: object              # torch.device
    model: str                  # the run's `model` tag (families.model_label of the checkpoint)
    tags: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    summary: str = ""           # added to the line printed at the start
    context: dict = field(default_factory=dict)  # what train() needs from the checks


@dataclass
class Trained:
    """What a recipe hands back once trained."""
    result: FitResult
    trainable_params: int
    predict: Callable[[str], object]  # split name -> P(positive) per review, in the split's order
    log_model: Callable[[float], None]  # log the model; its label: P(positive) >= this threshold


def run_family(family: Family, config, on_epoch: Callable | None = None, parent_run_id: str | None = None,
               extra_tags: dict | None = None) -> Outcome:
    """Train and test one model of `family` with `config`, logged as one MLflow run."""
    started = time.perf_counter()
    recipe = family.recipe_of().load()
    tag = family_tag(family, config)
    prepared = recipe.prepare(config)
    devices.set_seed(config.seed)
    splits = data.load_splits(config.data_dir, config.val_fraction, config.seed, config.limit)
    print(f"{tag}: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test reviews "
          f"on {prepared.device}{prepared.summary}", flush=True)
    tags = {"family": tag, "model": prepared.model, **prepared.tags, "device": prepared.device.type,
            **(extra_tags or {})}
    params = tracking.run_params(config, {"data_sha256": splits.sha256, "device_resolved": str(prepared.device),
                                          **prepared.params})
    run_name = config.run_name or f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    with tracking.start_run(run_name, tags, params, experiment=config.experiment,
                            parent_run_id=parent_run_id) as run:
        log_data(splits, config.data_dir)
        trained = recipe.train(config, prepared, splits, on_epoch)
        result = trained.result
        final = report_test(splits, trained.predict("test"), trained.predict("val"), result.history,
                            result.best_epoch, result.best_val_acc, result.train_seconds, started,
                            trained.trainable_params)
        trained.log_model(final["best_threshold"])
    if config.register:  # once the run ended FINISHED
        serving.register(run.info.run_id, config.register)
    return Outcome(run.info.run_id, result.best_val_acc, final["test_acc"], result.history)
