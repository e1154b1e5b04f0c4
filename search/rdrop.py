"""make search-rdrop ARGS="..."   (or: python search/rdrop.py --help)

Optuna study of the R-Drop weight alpha (KL between two dropout passes) of the R-Drop
encoder family (`--family rdrop-lora` too).
Search space: PRESETS["rdrop"] in imdb_sentiment/search/spaces.py (`--param` adds to it); the
trials train exactly as the family's train/ script does, with its flags passed through. Budget,
resume, pruning, objectives and workers: docs/search.md.
"""

from imdb_sentiment import search
from imdb_sentiment.errors import run_main


def main(argv=None):
    return search.main("rdrop", argv, prog="search/rdrop.py", description=__doc__)


if __name__ == "__main__":
    run_main(main)
