"""A train/ script's command line: its family's config from flags, then one tracked run.

    python train/lstm.py --epochs 5      # cli.main("lstm"): parse, run_family, errors as one line

The family registry (families.py) is data; this is where a family's name
becomes a parsed config and a run.
"""

from .errors import run_main
from .families import FAMILIES


def parse(name: str, argv=None, description: str | None = None, defaults: dict | None = None):
    """The config of family `name` from a command line: its script's flags (and --config FILE.yaml,
    --print-config), over the family's defaults in families.py."""
    from .config import parse_config

    family = FAMILIES[name]
    return parse_config(family.recipe_of().config_class(), argv, prog=family.script, description=description,
                        defaults={**family.defaults, **(defaults or {})},
                        defaults_source=f"{name} family default, imdb_sentiment/families.py")


def train(name: str, argv=None, description: str | None = None):
    """What `python train/<name>.py [flags]` does: parse, then one tracked run."""
    config = parse(name, argv, description)
    recipe = FAMILIES[name].recipe_of()
    if not recipe.classifier:  # pretraining: a run of its own kind (imdb_sentiment/pretraining.py)
        return recipe.load().pretrain(config)
    from .runs import run_family  # torch, data and MLflow load only once a run starts

    return run_family(FAMILIES[name], config)


def main(name: str, description: str | None = None) -> None:
    """A train/ script's whole body: train(name) with user errors as one line."""
    run_main(lambda argv: train(name, argv, description))
