"""make search-lora ARGS="..."   (or: python search/lora.py --help)

Optuna study of LoRA rank r, alpha and the learning rate of the DeBERTa LoRA family (`--family rdrop-lora`, `scl-lora` too).
Search space: SEARCH_SPACES["lora"] in imdb_sentiment/search.py; the trials
train exactly as the family's train/ script does, with its flags passed
through. Budget, resume, pruning and workers: README.md, "Hyperparameter search".
"""

from imdb_sentiment import search
from imdb_sentiment.errors import run_main


def main(argv=None):
    return search.main("lora", argv, prog="search/lora.py", description=__doc__)


if __name__ == "__main__":
    run_main(main)
