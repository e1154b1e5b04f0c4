"""Optuna studies over the same training function the train/ scripts call.

    python search/max_length.py --family lstm --budget-gpu-hours 2      # = make search-max-length
    python search/custom.py --family gru --param lr=loguniform:1e-4:1e-2  # = make search FAMILY=gru ARGS=...

A search script calls `main` with a preset (the four studies of the design
card) or none (search/custom.py: the space comes from --param / --space). One
module per concern:

    spaces       what is searched (Param, PRESETS, --param/--space parsing) and optimised (OBJECTIVES)
    cli          the command line: SearchConfig + the family's config minus the searched fields;
                 CPU-sized defaults without a GPU
    preflight    libraries, data, checkpoint and tokenizer: checked before the study exists
    storage      the storage URL, RDBStorage with heartbeats, StudyLock
    budget       device-hours spent and reserved, why no further trial starts
    mlflow_runs  the parent run, a child run per trial, the summary (best trial or Pareto front, plots)
    study        the objective and the loop (budget check and ask under the lock, one trial at a time)

Budget, resume, heartbeats, workers: docs/search.md.
Nothing here imports torch, Optuna or MLflow at import time: `--help` answers at once.
"""

from .budget import budget_of, trial_cost
from .cli import SearchConfig, Setup, parse_search_args
from .spaces import OBJECTIVES, PRESETS, SEARCH_SPACES
from .storage import redact, storage_url


def main(preset: str | None, argv=None, prog: str | None = None, description: str | None = None) -> dict:
    """A search script's whole body: parse, check everything the study needs, run it."""
    from .preflight import check_ready
    from .study import run_study

    setup = parse_search_args(preset, argv, prog, description)
    check_ready(setup)
    return run_study(setup)
