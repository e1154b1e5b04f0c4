"""Flags that apply or are refused, defaults a reader can find, and flags from a YAML file:
a flag the run does not use is a one-line error and is never logged; --print-config shows
each value with where it came from; --config FILE.yaml is merged under the command line and
logged with the run; TF-IDF's solver pass cap is --max-iter, never --epochs."""

import dataclasses
import os
import re
import subprocess
import sys
import typing

import pytest

from imdb_sentiment.cli import parse
from imdb_sentiment.config import EmbeddingConfig, EncoderConfig, applicable, flag, not_applying
from imdb_sentiment.errors import UserError
from imdb_sentiment.families import FAMILIES
from tests.support import PYTHON, REPO, finished_run

HEAVY = ("torch", "transformers", "mlflow", "peft", "pandas", "optuna", "sklearn")
TINY_LSTM = ["--epochs", "1", "--embeddings", "random", "--hidden-size", "8", "--batch-size", "16", "--no-progress"]


def one_line_error(name, argv) -> str:
    with pytest.raises(UserError) as caught:
        parse(name, argv)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- flags that apply

@pytest.mark.parametrize("family, argv, message", [
    ("lstm", ["--num-capsules", "5"],
     "--num-capsules: applies to --model capsule-lstm only (this run has --model lstm)"),
    ("gru", ["--attention-dim", "8"],
     "--attention-dim: applies to --model attention-lstm only (this run has --model gru)"),
    ("lstm", ["--pool-size", "3"], "--pool-size: applies to --model cnn-lstm only (this run has --model lstm)"),
    ("lstm", ["--filter-sizes", "3"], "--filter-sizes: applies to --model cnn or cnn-lstm only (this run has --model "
                                      "lstm)"),
    ("cnn", ["--num-heads", "2"], "--num-heads: applies to --model transformer only (this run has --model cnn)"),
    ("cnn", ["--hidden-size", "8"], "--hidden-size: applies to --model lstm, gru, cnn-lstm, attention-lstm, "
                                    "capsule-lstm or transformer only (this run has --model cnn)"),
    ("lstm", ["--embeddings", "random", "--w2v-epochs", "1"],
     "--w2v-epochs: applies to --embeddings word2vec only (this run has --embeddings random)"),
    ("bert", ["--lora-r", "4"], "--lora-r: applies to --method lora only (this run has --method none)"),
    ("deberta-ptuning", ["--target-modules", "query"],
     "--target-modules: applies to --method lora only (this run has --method ptuning)"),
    ("bert", ["--method", "lora", "--num-virtual-tokens", "4"],
     "--num-virtual-tokens: applies to --method ptuning, prompt or prefix only (this run has --method lora)"),
    ("deberta-ptuning", ["--prompt-init-text", "a review"],
     "--prompt-init-text: applies to --method prompt only (this run has --method ptuning)"),
    ("deberta-prompt", ["--encoder-hidden-size", "16"],
     "--encoder-hidden-size: applies to --method ptuning or prefix only (this run has --method prompt)"),
    ("scl", ["--rdrop-alpha", "2"], "--rdrop-alpha: applies to --regulariser rdrop only (this run has --regulariser "
                                    "scl)"),
    ("bert", ["--scl-lambda", "0.7"], "--scl-lambda: applies to --regulariser scl only (this run has --regulariser "
                                      "none)"),
])
def test_a_flag_the_run_does_not_use_is_one_line_naming_what_it_applies_to(family, argv, message):
    assert one_line_error(family, argv) == message


def test_the_same_flags_parse_where_they_apply():
    assert parse("capsule-lstm", ["--num-capsules", "5"]).num_capsules == 5
    assert parse("lstm", ["--model", "capsule-lstm", "--num-capsules", "5"]).num_capsules == 5
    assert parse("bert", ["--method", "lora", "--lora-r", "4"]).lora_r == 4
    assert parse("scl-lora", ["--scl-lambda", "0.7", "--lora-r", "4"]).scl_lambda == 0.7
    # A family default that another --model does not use is dropped, not an error: nobody gave it.
    config = parse("transformer", ["--model", "lstm"])
    assert config.num_heads == 4 and "num_heads" not in applicable(config) and "hidden_size" in applicable(config)


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_uses_every_default_it_sets(name):
    family = FAMILIES[name]
    config = parse(name, [])
    unused = {key: not_applying(config, key) for key in family.defaults if not_applying(config, key)}
    assert unused == {}


def test_every_applies_names_a_field_and_values_it_can_take():
    """The data the check reads is checked: `applies={"model": ("capsul-lstm",)}` would refuse the
    flag everywhere. The networks are models.MODELS, each an embedding family of the registry."""
    from imdb_sentiment.models import MODELS

    assert set(MODELS) == {n for n, f in FAMILIES.items() if f.recipe == "embedding"}
    for config_cls in (EmbeddingConfig, EncoderConfig):
        hints = typing.get_type_hints(config_cls)
        for field in dataclasses.fields(config_cls):
            for key, values in field.metadata.get("applies", {}).items():
                allowed = set(MODELS) if key == "model" else {"word2vec"} if key == "embeddings" else \
                    set(typing.get_args(hints[key]))
                assert set(values) <= allowed, (field.name, key, values)
                assert f"(only with {flag(key)} " in field.metadata["help"]


@pytest.mark.slow
def test_an_inapplicable_flag_stops_the_script_before_any_run(tmp_path):
    store = tmp_path / "mlflow.db"
    result = subprocess.run([PYTHON, "train/lstm.py", "--num-capsules", "5"], cwd=REPO, capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"})
    assert result.returncode == 2
    assert result.stderr == "error: --num-capsules: applies to --model capsule-lstm only (this run has --model lstm)\n"
    assert result.stdout == "" and not store.exists()


def test_a_study_searching_or_given_a_field_its_trials_do_not_use_fails_up_front():
    from imdb_sentiment.search import parse_search_args

    with pytest.raises(UserError) as caught:
        parse_search_args(None, ["--family", "bert", "--param", "lora_r=int:4:16"])
    assert str(caught.value) == "searched lora_r: applies to --method lora only (the study's trials have --method none)"
    with pytest.raises(UserError, match=r"^--num-capsules: applies to --model capsule-lstm only"):
        parse_search_args(None, ["--family", "lstm", "--num-capsules", "4", "--param", "lr=loguniform:1e-3:1e-2"])
    # Searching the condition too leaves the choice to each trial.
    setup = parse_search_args(None, ["--family", "bert", "--param", "method=choice:none,lora",
                                     "--param", "lora_r=int:4:16"])
    assert set(setup.space) == {"method", "lora_r"}


def test_a_run_logs_no_field_it_does_not_use_and_its_config_file(mlflow_store, tiny_data_dir, tmp_path):
    from imdb_sentiment.cli import train

    path = tmp_path / "tiny.yaml"
    path.write_text("# a quick look\nembedding-dim: 8\nhidden_size: 16\nmax_length: 32\n")
    train("lstm", ["--data-dir", str(tiny_data_dir), "--run-name", "applies", "--config", str(path), *TINY_LSTM])
    client, run = finished_run(mlflow_store, "applies")
    params = run.data.params
    unused = {"num_filters", "filter_sizes", "pool_size", "attention_dim", "num_capsules", "capsule_dim",
              "routing_iterations", "num_heads", "feedforward_dim", "w2v_epochs", "w2v_window"}
    assert unused.isdisjoint(params)
    # What the analysis and combine read stays.
    assert {"limit", "seed", "val_fraction", "data_sha256", "max_length", "model", "epochs", "lr", "hidden_size",
            "batch_size", "embeddings"} <= set(params)
    # The file's values, the command line's over them (TINY_LSTM sets --hidden-size 8), and the file itself.
    assert (params["model"], params["embedding_dim"], params["hidden_size"], params["max_length"]) == \
        ("lstm", "8", "8", "32")
    logged = client.download_artifacts(run.info.run_id, "config/tiny.yaml", str(tmp_path / "logged"))
    assert open(logged).read() == path.read_text()


@pytest.mark.parametrize("name, flag", [("lstm", "--resume"), ("bert", "--resume"), ("mlm", "--resume"),
                                        ("distill", "--teacher"), ("self-train", "--teacher")])
def test_a_flag_naming_a_run_takes_only_a_run_id(name, flag):
    run_id = "0123456789abcdef" * 2
    assert getattr(parse(name, [flag, run_id]), flag[2:]) == run_id
    for wrong in (run_id.upper(), run_id[:-1], f"runs:/{run_id}"):
        assert one_line_error(name, [flag, wrong]) == f"{flag}: expected an MLflow run id (32 hex digits), got {wrong!r}"


# ---------------------------------------------------------------- TF-IDF: --max-iter, never --epochs

@pytest.mark.parametrize("name", ["tfidf", "distill"])
def test_the_linear_families_cap_solver_passes_with_max_iter_and_refuse_epochs(name):
    assert parse(name, []).max_iter == 300
    assert parse(name, ["--max-iter", "50"]).max_iter == 50
    assert one_line_error(name, ["--epochs", "1"]) == (
        f"--epochs: not a flag of train/{name}.py: the linear model fits once, with no epochs; --max-iter caps its "
        "solver's passes")
    assert one_line_error(name, ["--max-iter", "0"]) == "--max-iter: expected an integer >= 1, got 0"
    assert not hasattr(parse(name, []), "epochs")


def test_a_solver_stopped_short_says_so_naming_max_iter(capfd):
    import numpy as np

    from imdb_sentiment import linear
    from tests.support import NEGATIVE, POSITIVE

    reviews, labels = POSITIVE * 4 + NEGATIVE * 4, np.array([1] * 12 + [0] * 12)
    for max_iter in (1, 300):
        pipeline = linear.build_pipeline(2, 100, 16, 1, 64.0, max_iter, 0)
        with linear.solver_stop_noted(pipeline):
            pipeline.fit(reviews, labels)
        err = capfd.readouterr().err
        if max_iter == 1:
            assert err == ("note: the logistic regression's solver stopped at its pass cap (--max-iter 1) before "
                           "converging; its predictions may be poor (the full data converges in about 155 passes): "
                           "raise --max-iter\n")
        else:
            assert err == "" and np.max(pipeline.named_steps["classifier"].n_iter_) < 300


# ---------------------------------------------------------------- --print-config

def test_print_config_shows_each_value_and_where_it_comes_from(capsys):
    with pytest.raises(SystemExit) as exited:
        parse("bert", ["--method", "lora", "--epochs", "2", "--print-config"])
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    sources = {line.split(":")[0]: re.sub(r"\s+", " ", line) for line in lines if not line.startswith("#")}
    assert sources["method"] == "method: lora # command line"
    assert sources["epochs"] == "epochs: 2 # command line"
    assert sources["lr"] == "lr: 0.0005 # DEFAULT_LR of --method lora, imdb_sentiment/config.py"
    assert sources["model"] == "model: bert-base-uncased # bert family default, imdb_sentiment/families.py"
    assert sources["batch_size"] == "batch_size: 16 # EncoderConfig default, imdb_sentiment/config.py"
    assert sources["seed"] == "seed: 42 # RunConfig default, imdb_sentiment/config.py"
    assert "lora_r" in sources and "num_virtual_tokens" not in sources and "rdrop_alpha" not in sources
    assert lines[-1] == ("# not used by this run: --num-virtual-tokens --prompt-init-text --encoder-hidden-size "
                         "--rdrop-alpha --scl-temperature --scl-lambda")


@pytest.mark.slow
def test_print_config_exits_0_and_loads_nothing_heavy():
    probe = ("import runpy, sys\n"
             "sys.argv = ['train/lstm.py', '--model', 'cnn', '--print-config']\n"
             "try:\n"
             "    runpy.run_path('train/lstm.py', run_name='__main__')\n"
             "except SystemExit as exit:\n"
             "    print('EXIT', exit.code)\n"
             f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    lines = result.stdout.splitlines()
    assert "model: cnn" in result.stdout and "num_filters: 100" in result.stdout
    assert lines[-2:] == ["EXIT 0", "LOADED []"], result.stdout + result.stderr


def test_print_config_reads_back_as_the_same_config(tmp_path, capsys):
    argv = ["--model", "cnn-lstm", "--lr", "2e-5", "--filter-sizes", "3", "--limit", "50"]
    with pytest.raises(SystemExit) as exited:
        parse("lstm", [*argv, "--print-config"])
    assert exited.value.code == 0
    printed = tmp_path / "printed.yaml"
    printed.write_text(capsys.readouterr().out)
    assert parse("lstm", ["--config", str(printed)]) == parse("lstm", argv)


# ---------------------------------------------------------------- --config FILE.yaml

def test_a_config_file_sets_flags_and_the_command_line_overrides_it(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("max-length: 128\nlr: 2e-5\nmodel: cnn\nnum_filters: '16'\nfreeze_embeddings: true\n"
                    "limit: null\n")
    config = parse("lstm", ["--config", str(path)])
    assert (config.max_length, config.lr, config.model, config.num_filters, config.freeze_embeddings) == \
        (128, 2e-5, "cnn", 16, True)
    assert config.epochs == 3 and config.config_file == str(path)  # the family's default where the file is silent
    config = parse("lstm", ["--config", str(path), "--max-length", "64", "--no-freeze-embeddings"])
    assert (config.max_length, config.freeze_embeddings, config.lr) == (64, False, 2e-5)
    assert parse("lstm", []).config_file is None


@pytest.mark.parametrize("family, text, message", [
    ("lstm", "max_lenght: 64\n", "unknown key 'max_lenght': train/lstm.py has no flag --max-lenght "
                                 "(did you mean max_length?)"),
    ("lstm", "epochs: three\n", "epochs: expected an integer, got 'three'"),
    ("lstm", "epochs: 2.5\n", "epochs: expected an integer, got 2.5"),
    ("lstm", "lr: null\n", "lr: expected a number, got None"),
    ("lstm", "freeze_embeddings: 1\n", "freeze_embeddings: expected true or false, got 1"),
    ("lstm", "truncation: middle\n", "truncation: expected one of head, head_tail, got 'middle'"),
    ("bert", "method: [lora]\n", "method: expected one of none, lora, ptuning, prompt, prefix, got ['lora']"),
    ("lstm", "- epochs: 2\n", "expected a mapping of flags to values (e.g. `max_length: 256`), got a list"),
    ("lstm", "", "expected a mapping of flags to values (e.g. `max_length: 256`), got an empty file"),
    ("lstm", "epochs: [2\n", "not valid YAML (expected ',' or ']', but got '<stream end>' at line 2)"),
    ("lstm", "max_length: 64\nmax-length: 32\n", "max-length: given twice (as max_length and max-length)"),
    ("lstm", "num_capsules: 4\n", "num_capsules: applies to --model capsule-lstm only (this run has --model lstm)"),
    ("tfidf", "epochs: 3\n", "epochs: not a flag of train/tfidf.py: the linear model fits once, with no epochs; "
                             "--max-iter caps its solver's passes"),
    ("lstm", "epochs: 0\n", "epochs: expected an integer >= 1, got 0"),
])
def test_each_mistake_in_a_config_file_is_one_line_naming_the_file_and_key(tmp_path, family, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    error = one_line_error(family, ["--config", str(path)])
    assert error == f"--config {path}: {message}"


def test_a_config_file_that_cannot_be_read_is_one_line(tmp_path):
    missing = tmp_path / "missing.yaml"
    assert one_line_error("lstm", ["--config", str(missing)]) == \
        f"--config {missing}: cannot read it (No such file or directory)"
