"""Everything a study needs, checked before the study or its MLflow parent run
exists: the libraries, the data files, and what the recipe's prepare() checks
(an encoder's config.json, its PEFT method and LoRA targets) plus the encoder's
tokenizer, for every checkpoint or method the space may choose. A problem is
one line (UserError), not a trial that fails three times.
"""

import dataclasses
import importlib.util
from pathlib import Path

from ..errors import UserError
from .storage import first_line

# module -> what needs it
NEEDED = {"optuna": "the study", "sqlalchemy": "the study storage", "mlflow": "tracking",
          "matplotlib": "the study's plots"}


def needed_modules(setup) -> dict:
    config, storage = setup.config, setup.search.storage or ""
    needed = dict(NEEDED)
    if setup.family.recipe == "encoder":
        needed["transformers"] = "encoders"
        if config.method != "none":
            needed["peft"] = f"--method {config.method}"
        if config.quantize != "none":
            needed["bitsandbytes"] = f"--quantize {config.quantize}"
    if setup.family.recipe == "embedding" and config.embeddings == "word2vec":
        needed["gensim"] = "word2vec"
    if storage.startswith("postgresql") and not importlib.util.find_spec("psycopg"):
        needed["psycopg2"] = "a PostgreSQL storage"
    return needed


def check_modules(needed: dict) -> None:
    for module, why in needed.items():
        if importlib.util.find_spec(module) is None:
            raise UserError(f"{module} is not installed ({why} needs it): run `make setup` "
                            f"(pip install -r requirements.txt)")


def check_data(config, recipe: str) -> None:
    from .. import data

    reads_unlabeled = (recipe == "embedding" and config.embeddings == "word2vec" and config.w2v_unlabeled) or \
        (recipe in ("distill", "doc2vec") and config.unlabeled) or recipe == "self-train"
    kinds = ["labeled", "test"] + (["unlabeled"] if reads_unlabeled else [])
    for kind in kinds:
        if data.find_kaggle_file(Path(config.data_dir), kind) is None:
            filename = data.KAGGLE_FILES[kind][0]
            raise UserError(f"{Path(config.data_dir) / filename}: file not found (nor .zip); run `make data` "
                            f"(or `make data FROM=<dir or archive>`), or pass --data-dir")


def check_tokenizer(name: str) -> None:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        ids = tokenizer("a wonderful film", add_special_tokens=False)["input_ids"]
    except Exception as error:  # whatever stops it loading stops every trial: say it once, here
        raise UserError(f"--model {name}: cannot load its tokenizer ({first_line(error)})") from None
    # A folder without tokenizer files loads as a tokenizer of special tokens only: every word unknown.
    if not ids or all(i == tokenizer.unk_token_id for i in ids):
        raise UserError(f"--model {name}: cannot load its tokenizer (it knows no words: are its vocabulary "
                        f"files missing?)")


def configs_to_check(setup) -> list:
    """Configs trials may train: each searched field at its first edge (the base config's own value of a
    searched field is never trained), then each other edge of each field (a checkpoint, a method)."""
    anchor = dataclasses.replace(setup.config, **{name: p.extremes()[0] for name, p in setup.space.items()})
    return [anchor] + [dataclasses.replace(anchor, **{name: value})
                       for name, param in setup.space.items() for value in param.extremes()[1:]]


def check_ready(setup) -> None:
    check_modules(needed_modules(setup))
    check_data(setup.config, setup.family.recipe)
    try:
        recipe = setup.family.recipe_of().load()
        configs = configs_to_check(setup)
        for config in configs:
            recipe.prepare(config)
    except ModuleNotFoundError as error:
        raise UserError(f"{error.name} is not installed ({setup.family.name} needs it): run `make setup` "
                        f"(pip install -r requirements.txt)") from None
    if setup.family.recipe == "encoder":
        from ..encoders.checkpoints import local_checkpoint

        for model in dict.fromkeys(config.model for config in configs):
            check_tokenizer(local_checkpoint(model))  # an mlm run's encoder: its downloaded folder
