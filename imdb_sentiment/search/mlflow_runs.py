"""A study in MLflow: one parent run per study (tag study_parent=true), one child
run per trial (the family's ordinary training run, tagged study, trial_number,
trial_state); at the end of each worker the parent holds what the study found:
the best trial (one objective) or the Pareto front (several), counts,
device-hours, plots and a summary of every trial.
"""

import csv
import io
import json
import warnings

from .. import store, tracking
from ..config import flatten
from ..errors import UserError
from ..families import model_label
from .budget import budget_of, trial_cost
from .spaces import OBJECTIVES
from .storage import redact


def parent_tags(setup, storage: str) -> dict:
    search, model = setup.search, getattr(setup.config, "model", "")
    return {"study_parent": "true", "study": setup.study_name, "storage": redact(storage),
            "budget_gpu_hours": search.budget_gpu_hours, "family": setup.tag,
            "model": model_label(model) if model else "", "pruner": search.pruner_in_use,
            "n_trials_cap": search.n_trials, "objectives": ",".join(search.objective_names)}


def open_parent_run(study, setup, storage: str, attrs: dict) -> str:
    """The study's parent MLflow run: created once, reused on resume (and by every worker)."""
    tags = parent_tags(setup, storage)
    experiment = setup.config.experiment
    run_id = study.user_attrs.get("mlflow_parent_run_id")
    tracking.configure(experiment=experiment)
    if run_id and tracking.run_status(run_id) is not None:
        tracking.set_run_status(run_id, "RUNNING", tags)
        return run_id
    params = {f"search.{k}": v for k, v in flatten(setup.search).items()}
    params.update(tracking.run_params(setup.config, {"search_space": json.dumps(attrs["search_space"])}))
    with tracking.start_run(setup.study_name, tags, params, experiment=experiment) as run:
        run_id = run.info.run_id
    study.set_user_attr("mlflow_parent_run_id", run_id)
    tracking.set_run_status(run_id, "RUNNING")
    return run_id


def child_run_id(trial_number: int, study_name: str, experiment: str | None) -> str | None:
    found = store.find_run_ids({"study": study_name, "trial_number": trial_number}, experiment)
    return found[0] if found else None


def retried_trial_number(trial) -> int | None:
    """The number of the trial this one runs again after its worker died, if any."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry

    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Retry.retried_trial_number(frozen)


def child_tags(trial, study_name: str) -> dict:
    """The tags a trial's run starts with."""
    retry_of = retried_trial_number(trial)
    return {"study": study_name, "trial_number": trial.number, "trial_state": "RUNNING",
            **({"retry_of_trial": retry_of} if retry_of is not None else {}),
            **({"reference_trial": "true"} if trial.user_attrs.get("reference_trial") else {})}


def end_child_run(trial, state: str, study_name: str, experiment: str | None) -> None:
    """Record the trial's run on the trial and give the run the trial's state: a pruned run
    stopped on purpose, so KILLED, not the FAILED that an exception gives it."""
    run_id = trial.user_attrs.get("mlflow_run_id") or child_run_id(trial.number, study_name, experiment)
    if run_id:
        trial.set_user_attr("mlflow_run_id", run_id)
        status = {"FINISHED": "FINISHED", "PRUNED": "KILLED"}.get(state, tracking.run_status(run_id))
        reached = trial.user_attrs.get("epochs_trained")
        tracking.set_run_status(run_id, status, {"trial_state": state,
                                                 **({"epochs_trained": reached} if reached else {})})


def final_metrics(run_id: str) -> dict:
    return store.get_run(run_id).data.metrics


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
        run_id = child_run_id(trial.number, study_name, experiment)
        if run_id:
            tracking.set_run_status(run_id, "FAILED", {"trial_state": "FAIL", "fail_reason": "no heartbeat"})

    return on_stale


# ---------------------------------------------------------------- the summary


def summarise(study, setup, parent_run_id: str, status: str = "FINISHED", confirmed: dict | None = None) -> dict:
    """Counts, device-hours and the best trial (against the reference trial) or the Pareto front, and
    what the confirm step found: printed and logged to the parent."""
    from optuna.trial import TrialState

    search, objectives = setup.search, setup.search.objective_names
    trials = study.get_trials(deepcopy=False)
    budget = budget_of(trials)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    confirm_spent = float(study.user_attrs.get("confirm_device_hours", 0.0))
    metrics = {"device_hours_spent": budget.spent + confirm_spent,  # the trials' and the confirm step's
               "n_trials_finished": len(completed),
               "n_trials_pruned": sum(t.state == TrialState.PRUNED for t in trials),
               "n_trials_failed": sum(t.state == TrialState.FAIL for t in trials)}
    confirmed_part = f" ({confirm_spent:.4f} of them the confirm step's)" if confirm_spent else ""
    print(f"study {setup.study_name}: {metrics['n_trials_finished']} finished, {metrics['n_trials_pruned']} "
          f"pruned, {metrics['n_trials_failed']} failed; {metrics['device_hours_spent']:.4f} of "
          f"{search.budget_gpu_hours} device-hours{confirmed_part}", flush=True)
    with tracking.start_run(None, {}, run_id=parent_run_id, experiment=setup.config.experiment):
        tracking.set_tags({"budget_gpu_hours": search.budget_gpu_hours})
        versus = None
        if len(objectives) == 1:
            _log_best(study, completed, objectives[0], metrics)
            if objectives == ("val_acc",):  # the comparison is of accuracies
                versus = _log_versus_reference(study, completed, metrics)
        elif completed:
            _log_pareto_front(study, objectives, metrics)
        if confirmed:
            _log_confirmed(confirmed, metrics)
        tracking.log_final(metrics)
        _log_study_plots(study, objectives, versus)
        tracking.log_dict({**metrics, "objectives": list(objectives),
                           "trials": [{"number": t.number, "state": t.state.name,
                                       "value": t.values[0] if t.values and len(objectives) == 1 else None,
                                       "values": dict(zip(objectives, t.values)) if t.values else None,
                                       "params": t.params, "device_hours": trial_cost(t),
                                       "mlflow_run_id": t.user_attrs.get("mlflow_run_id")} for t in trials]},
                          "study_summary.json")
    if status != "FINISHED":
        tracking.set_run_status(parent_run_id, status)
    return metrics


def _log_best(study, completed, objective: str, metrics: dict) -> None:
    if not completed:
        return
    best = study.best_trial
    metrics["best_value"] = best.value
    run_id = best.user_attrs.get("mlflow_run_id", "")
    # Params cannot change once logged; a resumed study with a new best keeps the tags current.
    tracking.set_tags({"best_trial_number": best.number, "best_child_run_id": run_id,
                       **{f"best.{k}": v for k, v in best.params.items()}})
    from mlflow.exceptions import MlflowException
    try:
        tracking.log_params({f"best.{k}": v for k, v in best.params.items()})
    except MlflowException:
        print("note: the best parameters changed since they were logged as params; "
              "the parent run's best.* tags hold the current ones", flush=True)
    print(f"best {objective} {best.value:.4g} (trial {best.number}): {best.params}; MLflow run {run_id}",
          flush=True)


def _log_versus_reference(study, completed, metrics: dict):
    """The best trial minus the reference trial on the validation reviews both predicted, with its
    interval and verdict (search/evidence.py): (reference value, comparison), or None."""
    from .evidence import compare_runs

    reference = next((t for t in completed if t.user_attrs.get("reference_trial")), None)
    if reference is None:
        return None
    best = study.best_trial
    try:
        comparison = compare_runs(best.user_attrs["mlflow_run_id"], reference.user_attrs["mlflow_run_id"], "val")
    except (UserError, ValueError) as error:  # e.g. a trial logged before runs logged their predictions
        print(f"note: no comparison with the reference trial: {error}", flush=True)
        return None
    metrics.update(reference_value=reference.value, best_minus_reference=comparison.difference,
                   best_minus_reference_low=comparison.low, best_minus_reference_high=comparison.high)
    verdict = "the reference is the best trial" if best.number == reference.number else comparison.verdict
    tracking.set_tags({"verdict": verdict, "reference_child_run_id": reference.user_attrs["mlflow_run_id"]})
    print(f"versus the reference trial ({reference.number}): {comparison.describe()}"
          + (" (the reference is the best trial)" if best.number == reference.number else "")
          + "; the best was chosen on these reviews, so its lead is optimistic: --confirm answers on the test "
            "reviews", flush=True)
    return reference.value, comparison


def _log_confirmed(confirmed: dict, metrics: dict) -> None:
    """The confirm step's runs: each setting's test accuracy (mean, sd over seeds) and the paired difference."""
    import numpy as np

    for role, values in confirmed["test_acc"].items():
        metrics[f"confirm_{role}_test_acc_mean"] = float(np.mean(values))
        if len(values) > 1:
            metrics[f"confirm_{role}_test_acc_sd"] = float(np.std(values, ddof=1))
    comparison = confirmed["comparison"]
    metrics.update(confirm_difference=comparison.difference, confirm_difference_low=comparison.low,
                   confirm_difference_high=comparison.high, confirm_device_hours=confirmed["device_hours"])
    verdict = "the reference is the best setting" if confirmed["same_setting"] else comparison.verdict
    tracking.set_tags({"confirm_verdict": verdict, "confirm_seeds": ",".join(map(str, confirmed["seeds"]))})


def _log_pareto_front(study, objectives, metrics: dict) -> None:
    """The trials no other beats on every objective: a tag, a JSON and a CSV table, printed."""
    front = sorted(study.best_trials, key=lambda t: t.number)
    metrics["pareto_front_size"] = len(front)
    rows = [{"trial_number": t.number, **dict(zip(objectives, t.values)), **{f"param.{k}": v for k, v in
            t.params.items()}, "mlflow_run_id": t.user_attrs.get("mlflow_run_id", "")} for t in front]
    tracking.set_tags({"best_trial_numbers": ",".join(str(t.number) for t in front)})
    tracking.log_dict({"objectives": {name: OBJECTIVES[name].direction for name in objectives}, "front": rows},
                      "pareto_front.json")
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
    writer.writeheader()
    writer.writerows(rows)
    tracking.log_text(table.getvalue(), "pareto_front.csv")
    directions = ", ".join(f"{name} {OBJECTIVES[name].direction[:3]}" for name in objectives)
    print(f"Pareto front ({directions}): {len(front)} trials", flush=True)
    for t in front:
        values = ", ".join(f"{name} {value:.4g}" for name, value in zip(objectives, t.values))
        print(f"  trial {t.number}: {values}; {t.params}", flush=True)


def _log_study_plots(study, objectives, versus=None) -> None:
    """Optuna's plots; the history shows the reference trial's value and the verdict when there is one."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return
    plots = optuna.visualization.matplotlib
    if len(objectives) == 1:
        wanted = {"optimization_history.png": plots.plot_optimization_history,
                  "param_importances.png": plots.plot_param_importances}
    else:
        wanted = {"pareto_front.png": lambda s: plots.plot_pareto_front(s, target_names=list(objectives))}
    for name, plot in wanted.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as error:  # e.g. importances need two distinct values
                print(f"note: no {name} ({str(error).splitlines()[0]})", flush=True)
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        if versus and name == "optimization_history.png":
            reference_value, comparison = versus
            axes.axhline(reference_value, color="grey", linestyle="--", label="reference trial")
            axes.legend()
            axes.set_title(f"best - reference {comparison.difference:+.4f} [{comparison.low:+.4f}, "
                           f"{comparison.high:+.4f}]: {comparison.verdict}", fontsize=9)
        figure.tight_layout()
        tracking.log_figure(figure, f"plots/{name}")
        plt.close(figure)
