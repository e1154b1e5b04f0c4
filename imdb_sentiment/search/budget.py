"""Device-hour accounting: what a study spent, what running trials reserve, why no
further trial may start.

A trial costs its wall time times the devices it used (a CPU-only trial counts
as one device). The cost is stored in the study (trial attributes), so the
budget holds across restarts and workers. Before a trial starts, the spend of
ended trials, the reservations of running ones and an estimate for the new one
(the mean completed trial) must fit the budget.
"""

import warnings
from dataclasses import dataclass
from datetime import datetime


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


def stop_reason(budget: Budget, n_trials: int, budget_gpu_hours: float, kept_runs: int = 0,
                kept_spent: float = 0.0) -> str | None:
    """Why no further trial may start, or None. What comes after the search (the confirm step) keeps
    `kept_runs` runs the size of a trial in the budget, or what it has spent (`kept_spent`) if more."""
    if budget.counted >= n_trials:
        return f"--n-trials {n_trials} reached"
    # Confirm runs already trained count in full; room for the rest stays at K x the estimate.
    kept = max(kept_runs * budget.estimate, kept_spent)
    if budget.spent + budget.reserved + budget.estimate + kept > budget_gpu_hours:
        after = f", {kept:.4f} kept for {kept_runs} confirm runs" if kept_runs else ""
        return (f"budget: {budget.summary()}{after}, a trial is estimated at {budget.estimate:.4f}, "
                f"the budget is {budget_gpu_hours} device-hours")
    return None
