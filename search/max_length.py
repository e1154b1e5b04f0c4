"""make search-max-length ARGS="..."   (or: python search/max_length.py --help)

Optuna study of max_length for a chosen family (`--family lstm`, `--family bert`, ...):
how many tokens a review needs.
Search space: PRESETS["max_length"] in imdb_sentiment/search/spaces.py (`--param` adds to it); the
trials train exactly as the family's train/ script does, with its flags passed through. Budget,
resume, pruning, objectives and workers: docs/search.md.
"""

from imdb_sentiment import search
from imdb_sentiment.errors import run_main


def main(argv=None):
    return search.main("max_length", argv, prog="search/max_length.py", description=__doc__)


if __name__ == "__main__":
    run_main(main)
