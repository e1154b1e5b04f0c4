"""The study loop: create or resume the study, then, under the study's lock,
check the budget and ask for one trial at a time; each trial trains as the
family's train/ script does.

The objective is the whole of a trial (optuna-examples' shape): suggest values
under the config's field names, build the config, call runs.run_family,
return what the study optimises. What a trial costs, which worker ran it and
how its MLflow run ends is recorded around it (`recorded`), not in it.
"""

import dataclasses
import json
import os
import socket
import time
import warnings
from contextlib import contextmanager

from .. import tracking
from ..config import flatten
from ..errors import UserError
from . import evidence, mlflow_runs
from .budget import budget_of, stop_reason
from .spaces import OBJECTIVES, describe
from .storage import StudyLock, default_storage, first_line, open_storage, redact, storage_url

# Training settings that may differ between workers and restarts of one study.
PER_WORKER = ("data_dir", "device", "progress", "run_name", "experiment")


def make_objective(setup, parent_run_id: str):
    """objective(trial): suggest, build the config, train as the script would, return the objectives."""
    import optuna

    from .. import runs  # torch and the data stack: only once a study runs

    objectives = setup.search.objective_names

    def pruning(trial):
        """on_epoch: report validation accuracy, stop a lagging trial while epochs remain (one
        objective only). After its last epoch a trial is paid for: pruning it then would only
        throw its result away, and whether it did would hang on which trials other workers had
        finished by then."""
        def on_epoch(epoch, metrics, last):
            trial.report(metrics["val_acc"], epoch)
            trial.set_user_attr("epochs_trained", epoch)  # the fidelity it reached (a pruner's rung)
            if not last and trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: val_acc {metrics['val_acc']:.4f}")
        return on_epoch if objectives == ("val_acc",) else None

    def objective(trial):
        values = {name: param.suggest(trial, name) for name, param in setup.space.items()}
        config = dataclasses.replace(setup.config, **values, run_name=f"{setup.study_name}-trial-{trial.number}")
        outcome = runs.run_family(setup.family, config, on_epoch=pruning(trial), parent_run_id=parent_run_id,
                                  extra_tags=mlflow_runs.child_tags(trial, setup.study_name))
        trial.set_user_attr("mlflow_run_id", outcome.run_id)
        return objective_values(outcome, objectives)

    return objective


def objective_values(outcome, objectives: tuple):
    """val_acc alone, else each objective's final metric as the trial's run logged it."""
    if objectives == ("val_acc",):
        return outcome.best_val_acc
    logged = mlflow_runs.final_metrics(outcome.run_id)
    return [logged[OBJECTIVES[name].metric] for name in objectives]


def recorded(objective, setup, lock: StudyLock, budget, device_count: int):
    """The objective with its bookkeeping: the reservation the budget check made, the worker,
    the device-hours it took, and its MLflow run ended with its state."""
    import optuna

    from ..training import NonFiniteLoss

    def trial_function(trial):
        trial.set_user_attr("devices", device_count)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("estimate_device_hours", budget.estimate)
        trial.set_user_attr("committed_device_hours", budget.spent + budget.reserved)
        lock.release()  # the trial is asked for and its reservation recorded: other workers may go on
        started, state = time.perf_counter(), "FAIL"
        try:
            result = objective(trial)
            state = "FINISHED"
            return result
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        except NonFiniteLoss as error:  # these settings diverge: pruned, and the study goes on
            state = "PRUNED"
            trial.set_user_attr("pruned_reason", str(error))
            print(f"trial {trial.number} pruned: {error}", flush=True)
            raise optuna.TrialPruned(str(error)) from None
        finally:
            trial.set_user_attr("device_hours", (time.perf_counter() - started) / 3600 * device_count)
            mlflow_runs.end_child_run(trial, state, setup.study_name, setup.config.experiment)

    return trial_function


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
    return {name: json.loads(distribution_to_json(p.distribution())) for name, p in sorted(space.items())}


def fixed_settings(config) -> dict:
    """The training settings every trial of a study shares (checked on resume)."""
    return {k: v for k, v in flatten(config).items() if k not in PER_WORKER}


def check_study_matches(study, study_name: str, attrs: dict) -> None:
    """A resumed study must search the same space for the same objectives with the same training settings."""
    stored_attrs = {"objectives": ["val_acc"], **study.user_attrs}  # studies from before --objectives
    for key, label in (("search_space", "search space"), ("family", "family"), ("objectives", "objectives")):
        if stored_attrs.get(key) != attrs[key]:
            raise UserError(f"--study-name {study_name}: this study exists with another {label} "
                            f"({json.dumps(stored_attrs.get(key))}, not {json.dumps(attrs[key])}): "
                            f"use another --study-name")
    searched = set(attrs["search_space"])  # each trial sets these: their base value does not matter
    stored = {k: v for k, v in study.user_attrs.get("settings", {}).items() if k not in searched}
    now = {k: v for k, v in attrs["settings"].items() if k not in searched}
    changed = sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))
    if changed:
        from ..config import flag
        shown = ", ".join(f"{flag(k)} {stored.get(k)!r} (now {now.get(k)!r})" for k in changed[:3])
        raise UserError(f"--study-name {study_name}: this study was created with {shown}: "
                        f"run it with the same training flags or use another --study-name")


def outside_space(setup) -> list[str]:
    """The reference's values the space cannot suggest (then there is no reference trial)."""
    return [f"{name} {value}" for name, value in (setup.reference or {}).items()
            if not setup.space[name].contains(value)]


def enqueue_reference(study, setup) -> None:
    """A new preset study's first trial: the reference's setting, when the space holds it."""
    if not setup.reference:
        return
    outside = outside_space(setup)
    if outside:
        print(f"note: no reference trial: its {', '.join(outside)} is outside the space "
              f"{describe({n: setup.space[n] for n in setup.reference})}", flush=True)
        return
    study.enqueue_trial(setup.reference, user_attrs={"reference_trial": True})
    print(f"trial 0 trains the reference setting: {setup.reference}", flush=True)


def reference_trial(study):
    """The study's reference trial once it completed, else None."""
    from optuna.trial import TrialState

    return next((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.user_attrs.get("reference_trial")), None)


def confirm_runs_planned(setup) -> int:
    """Runs the confirm step will train (the budget keeps room for them): K seeds x best and reference."""
    single = setup.search.objective_names == ("val_acc",)
    return 2 * setup.search.confirm if single and setup.reference and not outside_space(setup) else 0


def confirm(study, setup, parent_run_id: str, device_count: int) -> dict | None:
    """--confirm K: the best and the reference setting trained again with seeds seed+1..seed+K on the
    study's data, under its parent run; their test accuracy as mean and sd, and the paired difference.
    Each run is recorded in the study (user attribute confirm_runs), so a resumed study trains only
    what is missing, and a worker that comes later finds them done. Called under the study's lock;
    while another worker's trial runs, the best may still change: the last worker confirms."""
    import optuna
    from optuna.trial import TrialState

    from .. import runs, store

    search = setup.search
    if not confirm_runs_planned(setup):
        if search.confirm and setup.search.objective_names != ("val_acc",):
            print(f"note: no confirm step: it compares validation-accuracy winners, and this study optimises "
                  f"{search.objectives}", flush=True)
        elif search.confirm:
            print("note: no confirm step: the study has no reference trial to compare with", flush=True)
        return None
    with _quiet_experimental():
        optuna.storages.fail_stale_trials(study)
    if study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        print("note: another worker's trial is still running, so the best may change: the last worker to "
              "finish confirms", flush=True)
        return None
    reference = reference_trial(study)
    if reference is None:
        print("note: no confirm step: the reference trial did not complete", flush=True)
        return None
    best = study.best_trial
    same = best.number == reference.number
    # When the reference is the best, its runs stand for both.
    roles = {"reference": reference.params} if same else {"best": best.params, "reference": reference.params}
    seeds = [setup.config.seed + k for k in range(1, search.confirm + 1)]
    done = dict(study.user_attrs.get("confirm_runs", {}))
    spent = float(study.user_attrs.get("confirm_device_hours", 0.0))
    print(f"confirm: the best setting {best.params} and the reference {reference.params}, seeds "
          f"{', '.join(map(str, seeds))}", flush=True)
    run_ids = {role: [] for role in roles}
    for seed in seeds:
        for role, values in roles.items():
            key = f"{seed} {json.dumps(values, sort_keys=True)}"  # a resumed study's new best is new runs
            if key not in done:
                config = dataclasses.replace(setup.config, **values, seed=seed,
                                             run_name=f"{setup.study_name}-confirm-{role}-seed-{seed}")
                started = time.perf_counter()
                outcome = runs.run_family(setup.family, config, parent_run_id=parent_run_id,
                                          extra_tags={"confirm_of": setup.study_name, "confirm_role": role,
                                                      "confirm_seed": seed})
                spent += (time.perf_counter() - started) / 3600 * device_count
                done[key] = outcome.run_id
                study.set_user_attr("confirm_runs", done)
                study.set_user_attr("confirm_device_hours", spent)
            run_ids[role].append(done[key])
    run_ids.setdefault("best", run_ids["reference"])
    test_acc = {role: [store.get_run(run_id).data.metrics["test_acc"] for run_id in ids]
                for role, ids in run_ids.items()}
    pooled = evidence.compare_pooled(list(zip(run_ids["best"], run_ids["reference"])), "test", seed=setup.config.seed)
    result = {"seeds": seeds, "test_acc": test_acc, "comparison": pooled, "device_hours": spent,
              "same_setting": same}
    for role in ("best", "reference"):
        print(f"confirm {role}: test_acc {evidence.mean_sd(test_acc[role])} over {len(seeds)} seeds", flush=True)
    print(f"confirm: {pooled.describe()}" + (" (the reference is the best setting)" if same else ""), flush=True)
    return result


@contextmanager
def _quiet_experimental():
    import optuna
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def open_study(setup, url: str, lock: StudyLock):
    """(study, parent run id): the study created (with its reference trial) or resumed."""
    import optuna

    search, objectives = setup.search, setup.search.objective_names
    attrs = {"search_space": space_signature(setup.space), "family": setup.tag,
             "settings": fixed_settings(setup.config), "objectives": list(objectives)}
    on_stale = mlflow_runs.stale_trial_handler(setup.study_name, setup.config.experiment, search.max_retries)
    with lock:  # also around opening: workers starting at once on a new database race to create its tables
        storage = open_storage(url, search.heartbeat_seconds, search.grace_seconds, on_stale)
        study = optuna.create_study(study_name=setup.study_name, storage=storage,
                                    directions=[OBJECTIVES[name].direction for name in objectives],
                                    pruner=make_pruner(search.pruner_in_use), load_if_exists=True)
        if "search_space" in study.user_attrs:
            check_study_matches(study, setup.study_name, attrs)
            print(f"resuming study {setup.study_name} ({len(study.get_trials(deepcopy=False))} trials so far)",
                  flush=True)
        else:
            for key, value in attrs.items():
                study.set_user_attr(key, value)
            enqueue_reference(study, setup)
        parent_run_id = mlflow_runs.open_parent_run(study, setup, url, attrs)
    return study, parent_run_id


def run_study(setup) -> dict:
    """Create or resume the study, run trials while budget and --n-trials allow, summarise."""
    import optuna

    from .. import device as devices

    search = setup.search
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if len(search.objective_names) > 1:
        print(f"note: pruning is off: Optuna cannot prune a multi-objective study "
              f"(--objectives {search.objectives})", flush=True)
    elif search.pruner_in_use != search.pruner:
        print(f"note: pruning is off: it stops trials by validation accuracy, not {search.objectives}",
              flush=True)
    tracking.check_store()  # before the study opens: its parent run and every trial log there
    url = storage_url(search.storage or default_storage())
    lock = StudyLock(url, setup.study_name)
    study, parent_run_id = open_study(setup, url, lock)
    print(f"study {setup.study_name} in {redact(url)}; MLflow parent run {parent_run_id}", flush=True)
    if search.objective_names == ("val_acc",):
        print(evidence.sizing_note(setup.config), flush=True)
    kept_runs = confirm_runs_planned(setup)
    if kept_runs:
        print(f"the budget keeps room for the confirm step: {kept_runs} runs the size of a trial "
              f"(--confirm {search.confirm}; 0 for none)", flush=True)

    objective = make_objective(setup, parent_run_id)
    device_count = devices.device_count(devices.detect_device(setup.config.device))
    failures_in_a_row = 0
    try:
        while True:
            lock.acquire()
            try:
                # Dead workers' trials first: they are run again before anything new, and their
                # reservation becomes what they really spent.
                with _quiet_experimental():
                    optuna.storages.fail_stale_trials(study)
                trials = study.get_trials(deepcopy=False)
                budget = budget_of(trials)
                reason = stop_reason(budget, search.n_trials, search.budget_gpu_hours, kept_runs,
                                     float(study.user_attrs.get("confirm_device_hours", 0.0)))
                if reason:
                    print(f"no further trial: {reason}", flush=True)
                    break
                # Seeded by the trial count, so one worker repeats itself and workers differ.
                study.sampler = optuna.samplers.TPESampler(seed=setup.config.seed + len(trials))
                study.optimize(recorded(objective, setup, lock, budget, device_count), n_trials=1)
                failures_in_a_row = 0
            except UserError:
                raise
            except Exception as error:  # one broken trial (e.g. out of memory) does not end the study
                failures_in_a_row += 1
                print(f"trial failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
                      flush=True)
                if failures_in_a_row >= 3:
                    raise UserError(f"3 trials in a row failed, the last with {type(error).__name__}: "
                                    f"{first_line(error)}; see the log above") from error
            finally:
                lock.release()
        with lock:  # one worker confirms; one that comes later finds the runs done
            confirmed = confirm(study, setup, parent_run_id, device_count)
    except BaseException as error:
        try:  # what was spent is logged however the worker stops
            mlflow_runs.summarise(study, setup, parent_run_id,
                                  status="KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        except Exception as summary_error:
            print(f"note: the study summary was not logged ({summary_error})", flush=True)
        raise
    return mlflow_runs.summarise(study, setup, parent_run_id, confirmed=confirmed)
