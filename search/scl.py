"""make search-scl ARGS="..."   (or: python search/scl.py --help)

Optuna study of the supervised-contrastive (SCL) temperature and its weight lambda against
cross-entropy (`--family scl-lora` too).
Search space: PRESETS["scl"] in imdb_sentiment/search/spaces.py (`--param` adds to it); the
trials train exactly as the family's train/ script does, with its flags passed through. Budget,
resume, pruning, objectives and workers: docs/search.md.
"""

from imdb_sentiment import search
from imdb_sentiment.errors import run_main


def main(argv=None):
    return search.main("scl", argv, prog="search/scl.py", description=__doc__)


if __name__ == "__main__":
    run_main(main)
