"""The search runner on tiny studies: budget, resume, pruning, MLflow runs, bad input, a killed worker.

The LSTM studies run the real scripts (search/max_length.py) as subprocesses on
tiny Kaggle files; pruning uses a scripted training function so that which
trials the median pruner stops is known in advance; the encoder studies
(LoRA, R-Drop, SCL) run in-process on tiny models saved to a temp dir.
"""

import os
import signal
import subprocess
import time

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.support import PYTHON, REPO, TINY_LSTM, check_budget_records, free_port, run_script, wait_for_http

def sqlite_storage(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def max_length_command(data_dir, storage, *extra):
    return [PYTHON, "search/max_length.py", "--family", "lstm", "--data-dir", str(data_dir),
            "--storage", storage, "--study-name", "tiny", *TINY_LSTM, *extra]


def trials_of(storage, name="tiny"):
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def study_runs(study: str) -> tuple:
    """(parent runs, child runs) of a study in the current MLflow store."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    if experiment is None:  # nothing logged yet
        return [], []
    runs = client.search_runs([experiment.experiment_id], f"tags.study = '{study}'", max_results=1000)
    parents = [r for r in runs if r.data.tags.get("study_parent") == "true"]
    children = [r for r in runs if r.data.tags.get("study_parent") != "true"]
    return parents, children


def test_resume_then_budget_stops_the_study(tiny_data_dir, tmp_path, mlflow_store):
    from imdb_sentiment.search import budget_of, trial_cost

    storage = sqlite_storage(tmp_path)
    first = run_script(max_length_command(tiny_data_dir, storage, "--n-trials", "2", "--budget-gpu-hours", "1"))
    assert "--n-trials 2 reached" in first.stdout
    assert [t.state.name for t in trials_of(storage)] == ["COMPLETE", "COMPLETE"]

    # The same command with a higher cap resumes: same study, same parent run, no trial run twice.
    second = run_script(max_length_command(tiny_data_dir, storage, "--n-trials", "3", "--budget-gpu-hours", "1"))
    assert "resuming study tiny (2 trials so far)" in second.stdout
    trials = trials_of(storage)
    assert [t.number for t in trials] == [0, 1, 2] and all(t.state.name == "COMPLETE" for t in trials)

    # A budget that covers about one more trial (by the mean so far) stops it after one or two.
    before = budget_of(trials)
    budget = before.spent + 1.5 * before.estimate
    third = run_script(max_length_command(tiny_data_dir, storage, "--n-trials", "50",
                                          "--budget-gpu-hours", repr(budget)))
    assert "no further trial: budget" in third.stdout
    trials = trials_of(storage)
    assert 4 <= len(trials) <= 5, [t.number for t in trials]
    after = budget_of(trials)
    assert after.spent + after.estimate > budget  # stopped because the next trial would not fit
    check_budget_records(trials[3:], budget)

    parents, children = study_runs("tiny")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["storage"] == storage and parent.data.tags["study"] == "tiny"
    assert float(parent.data.tags["budget_gpu_hours"]) == pytest.approx(budget)
    metrics = parent.data.metrics
    assert metrics["n_trials_finished"] == len(trials)
    assert metrics["n_trials_pruned"] == metrics["n_trials_failed"] == 0
    assert metrics["device_hours_spent"] == pytest.approx(sum(trial_cost(t) for t in trials))
    assert metrics["device_hours_spent"] == pytest.approx(after.spent)

    assert sorted(int(c.data.tags["trial_number"]) for c in children) == [t.number for t in trials]
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert all(c.info.status == "FINISHED" and c.data.tags["trial_state"] == "FINISHED" for c in children)
    by_number = {int(c.data.tags["trial_number"]): c for c in children}
    for trial in trials:  # the suggested value is what the child run trained with
        assert by_number[trial.number].data.params["max_length"] == str(trial.params["max_length"])
        assert by_number[trial.number].data.metrics["best_val_acc"] == pytest.approx(trial.value)

    best = max(trials, key=lambda t: t.value)
    assert metrics["best_value"] == pytest.approx(best.value)
    best_run = by_number[int(parent.data.tags["best_trial_number"])]
    assert parent.data.tags["best_child_run_id"] == best_run.info.run_id
    assert best_run.data.metrics["best_val_acc"] == pytest.approx(best.value)
    assert parent.data.params["best.max_length"] in {str(t.params["max_length"]) for t in trials}
    artifacts = {a.path for a in MlflowClient().list_artifacts(parent.info.run_id, "plots")}
    assert artifacts == {"plots/optimization_history.png", "plots/param_importances.png"}


# ------------------------------------------------------------------ pruning (scripted training)


def scripted_training(family, config, on_epoch=None, parent_run_id=None, extra_tags=None):
    """A stand-in for runs.run_family whose validation accuracy falls with the trial number."""
    from imdb_sentiment import tracking
    from imdb_sentiment.training import Outcome

    family = family.name
    number = int(extra_tags["trial_number"])
    if number == 2:
        with tracking.start_run(config.run_name, {"family": family, **extra_tags}, parent_run_id=parent_run_id):
            raise RuntimeError("out of memory (scripted)")
    history = []
    with tracking.start_run(config.run_name, {"family": family, **extra_tags}, parent_run_id=parent_run_id) as run:
        for epoch in (1, 2, 3):
            metrics = {"val_acc": 1.0 - 0.1 * number + 0.01 * epoch}
            history.append(metrics)
            tracking.log_epoch(epoch, metrics)
            on_epoch(epoch, metrics)
        tracking.log_final({"best_val_acc": history[-1]["val_acc"]})
    return Outcome(run.info.run_id, history[-1]["val_acc"], history[-1]["val_acc"], history)


def scripted_study(name: str, pruner: str, n_trials: int, tmp_path, monkeypatch) -> list:
    """A max_length study whose trials run scripted_training; its trials."""
    from imdb_sentiment import runs, search

    monkeypatch.setattr(runs, "run_family", scripted_training)
    storage = sqlite_storage(tmp_path)
    search.main("max_length", ["--storage", storage, "--study-name", name, "--n-trials", str(n_trials),
                               "--pruner", pruner, "--budget-gpu-hours", "1"])
    return trials_of(storage, name)


def test_median_pruner_prunes_and_states_reach_mlflow(tmp_path, mlflow_store, monkeypatch):
    trials = scripted_study("pruning", "median", 6, tmp_path, monkeypatch)
    # 0, 1 complete; 2 fails; 3 completes (the pruner waits for 3 completed trials); 4, 5 lag: pruned.
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "PRUNED", "PRUNED"]
    assert all(list(t.intermediate_values) == [1] for t in trials[4:])  # stopped after epoch 1

    parents, children = study_runs("pruning")
    states = {int(c.data.tags["trial_number"]): (c.info.status, c.data.tags["trial_state"]) for c in children}
    assert states == {0: ("FINISHED", "FINISHED"), 1: ("FINISHED", "FINISHED"), 2: ("FAILED", "FAIL"),
                      3: ("FINISHED", "FINISHED"), 4: ("KILLED", "PRUNED"), 5: ("KILLED", "PRUNED")}
    metrics = parents[0].data.metrics
    assert (metrics["n_trials_finished"], metrics["n_trials_pruned"], metrics["n_trials_failed"]) == (3, 2, 1)
    assert metrics["best_value"] == pytest.approx(1.03)
    assert parents[0].data.tags["best_child_run_id"] == trials[0].user_attrs["mlflow_run_id"]


def test_hyperband_pruner_stops_lagging_trials(tmp_path, mlflow_store, monkeypatch):
    trials = scripted_study("hyperband", "hyperband", 8, tmp_path, monkeypatch)
    states = [t.state.name for t in trials]
    # Each trial is worse than the one before: the first completes, later ones that share
    # a bracket with a better one are stopped; trial 2 fails by script.
    assert states[0] == "COMPLETE" and states[2] == "FAIL" and len(states) == 8
    pruned = [t.number for t in trials if t.state.name == "PRUNED"]
    assert pruned, states

    parents, children = study_runs("hyperband")
    by_number = {int(c.data.tags["trial_number"]): c for c in children}
    assert all((by_number[n].info.status, by_number[n].data.tags["trial_state"]) == ("KILLED", "PRUNED")
               for n in pruned)
    assert parents[0].data.metrics["n_trials_pruned"] == len(pruned)


# ------------------------------------------------------------------ bad input


def other_space_study(storage):
    """A study named `taken` created by another search space."""
    study = optuna.create_study(study_name="taken", storage=storage, direction="maximize")
    study.set_user_attr("search_space", {"lr": {"name": "FloatDistribution"}})
    study.set_user_attr("family", "lstm")


@pytest.mark.parametrize("argv, message", [
    (["--family", "nope"], "--family nope: unknown family; known: "),
    (["--family", "bert", "--hidden-sizee", "3"], "unrecognized arguments: --hidden-sizee 3"),
    (["--max-length", "100"], "--max-length: the max_length study searches it"),
    (["--budget-gpu-hours", "0"], "--budget-gpu-hours: expected a positive number of device-hours, got 0.0"),
    (["--budget-gpu-hours", "-2"], "--budget-gpu-hours: expected a positive number"),
    (["--storage", "postgresql://someone:s3cret@127.0.0.1:9/nowhere"], "cannot open the study storage"),
    (["--storage", "not a url"], "not an SQLAlchemy URL"),
    (["--study-name", "taken"], "this study exists with another search space"),
])
def test_bad_input_is_one_line_before_any_training(argv, message, tmp_path, mlflow_store, monkeypatch):
    from imdb_sentiment import runs, search
    from imdb_sentiment.errors import UserError

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(runs, "run_family", no_training)
    storage = sqlite_storage(tmp_path)
    other_space_study(storage)
    if "--storage" not in argv:
        argv = [*argv, "--storage", storage]
    with pytest.raises(UserError) as raised:
        search.main("max_length", argv)
    text = str(raised.value)
    assert message in text and "\n" not in text
    assert "s3cret" not in text
    assert not (tmp_path / "mlflow" / "mlflow.db").exists()  # nothing was logged, not even a parent run


def test_unknown_parameter_in_a_search_space(tmp_path, monkeypatch):
    from imdb_sentiment import search
    from imdb_sentiment.errors import UserError

    monkeypatch.setitem(search.SEARCH_SPACES, "max_length",
                        {"max_lenght": optuna.distributions.CategoricalDistribution([8, 16])})
    with pytest.raises(UserError, match="searches max_lenght, which the lstm family's config"):
        search.main("max_length", ["--storage", sqlite_storage(tmp_path)])


def test_bad_input_from_the_command_line(tmp_path):
    result = run_script([PYTHON, "search/scl.py", "--family", "lstm"], check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --family lstm: the scl study is for families trained with "
                                     "--regulariser scl (e.g. scl)")


def test_redact_removes_the_password():
    from imdb_sentiment.search import redact, storage_url

    assert redact("postgresql://optuna:s3cret@db.example:5432/studies") == \
        "postgresql://optuna@db.example:5432/studies"
    assert storage_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


# ------------------------------------------------------------------ a worker killed with SIGKILL


def test_killed_worker_trial_is_failed_and_run_again(tiny_data_dir, tmp_path, mlflow_store):
    storage = sqlite_storage(tmp_path)
    command = max_length_command(tiny_data_dir, storage, "--n-trials", "1", "--epochs", "12", "--patience", "0",
                                 "--heartbeat-seconds", "1", "--grace-seconds", "2")
    worker = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while not study_runs("tiny")[1]:  # the trial's child run exists: it is training
            assert worker.poll() is None, worker.communicate()[0][-3000:]
            assert time.time() < deadline, "the trial did not start"
            time.sleep(0.2)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    assert [t.state.name for t in trials_of(storage)] == ["RUNNING"]
    time.sleep(3.5)  # past the grace period

    rerun = run_script(command)
    assert "trial 0: no heartbeat" in rerun.stdout
    failed, retried = trials_of(storage)
    assert failed.state.name == "FAIL" and retried.state.name == "COMPLETE"
    assert retried.system_attrs["failed_trial"] == 0 and retried.params == failed.params

    parents, children = study_runs("tiny")
    assert len(parents) == 1
    by_number = {int(c.data.tags["trial_number"]): c for c in children}
    assert (by_number[0].info.status, by_number[0].data.tags["trial_state"]) == ("FAILED", "FAIL")
    assert (by_number[1].info.status, by_number[1].data.tags["trial_state"]) == ("FINISHED", "FINISHED")
    assert by_number[1].data.tags["retry_of_trial"] == "0"
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    metrics = parents[0].data.metrics
    assert (metrics["n_trials_finished"], metrics["n_trials_failed"]) == (1, 1)


# ------------------------------------------------------------------ make targets


def make_recipe(target: str, *variables) -> str:
    """The command a make target runs (dry run: nothing is installed or trained)."""
    result = run_script(["make", "--no-print-directory", "-n", target, *variables])
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("target, script", [("search-lora", "lora"), ("search-rdrop", "rdrop"),
                                            ("search-scl", "scl"), ("search-max-length", "max_length")])
def test_make_targets_run_the_scripts(target, script):
    recipe = make_recipe(target, "ARGS=--n-trials 3")
    assert recipe.endswith(f"search/{script}.py --n-trials 3")


def test_make_optuna_dashboard_serves_the_storage_on_localhost(tmp_path):
    storage = sqlite_storage(tmp_path)
    optuna.create_study(study_name="shown", storage=storage)
    port = free_port()
    recipe = make_recipe("optuna-dashboard", f"OPTUNA_STORAGE={storage}", f"DASHBOARD_PORT={port}")
    assert "--host 127.0.0.1" in recipe
    server = subprocess.Popen(recipe, shell=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        assert '"shown"' in wait_for_http(f"http://127.0.0.1:{port}/api/studies", server)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


# ------------------------------------------------------------------ the encoder studies


@pytest.fixture(scope="module")
def tiny_encoders(tmp_path_factory):
    from tests.support import write_kaggle_files
    from tests.support import OFFLINE, build_tiny_models

    os.environ.update(OFFLINE)
    root = tmp_path_factory.mktemp("search-encoders")
    return build_tiny_models(root / "models", write_kaggle_files(root / "kaggle"))


@pytest.mark.parametrize("study, family, model, searched", [
    ("lora", "deberta-lora", "deberta", ("lora_r", "lora_alpha", "lr")),
    ("rdrop", "rdrop", "bert", ("rdrop_alpha",)),
    ("scl", "scl", "bert", ("scl_temperature", "scl_lambda")),
    ("max_length", "bert", "bert", ("max_length",)),
])
def test_encoder_studies_search_their_parameters(study, family, model, searched, tiny_encoders, tiny_data_dir,
                                                 tmp_path, mlflow_store):
    from imdb_sentiment import search

    storage = sqlite_storage(tmp_path)
    fixed_length = [] if study == "max_length" else ["--max-length", "48"]
    search.main(study, ["--family", family, "--model", str(tiny_encoders[model]), "--data-dir", str(tiny_data_dir),
                        "--storage", storage, "--study-name", study, "--n-trials", "2", "--epochs", "1",
                        "--batch-size", "8", "--no-save-model", *fixed_length])
    trials = trials_of(storage, study)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    parents, children = study_runs(study)
    assert len(parents) == 1 and len(children) == 2
    for child in children:
        trial = trials[int(child.data.tags["trial_number"])]
        assert child.data.tags["family"] == family
        for name in searched:  # the trial's value is what the encoder trained with
            assert float(child.data.params[name]) == pytest.approx(trial.params[name])
