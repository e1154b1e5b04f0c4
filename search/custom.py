"""make search FAMILY=<family> ARGS="--param ..."   (or: python search/custom.py --help)

Optuna study of any fields of a family's config, e.g.
    python search/custom.py --family gru --param lr=loguniform:1e-4:1e-2 \\
        --param batch_size=choice:32,64 --param dropout=uniform:0.1:0.5
    python search/custom.py --family bert --space my_space.yaml --objectives val_acc,device_hours
Each --param is NAME=KIND:ARGS (imdb_sentiment/search/spaces.py); --space FILE.yaml maps names to
the same strings. The trials train exactly as the family's train/ script does, with its flags
passed through. Budget, resume, pruning, objectives and workers: docs/search.md.
"""

from imdb_sentiment import search
from imdb_sentiment.errors import run_main


def main(argv=None):
    return search.main(None, argv, prog="search/custom.py", description=__doc__)


if __name__ == "__main__":
    run_main(main)
