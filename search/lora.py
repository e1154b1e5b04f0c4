"""make search-lora ARGS="..."   (or: python search/lora.py --help)

Optuna study of LoRA rank r, alpha and the learning rate of the DeBERTa LoRA family
(`--family rdrop-lora`, `scl-lora` too; without a GPU: bert-lora on the packaged MiniLM).
Search space: PRESETS["lora"] in imdb_sentiment/search/spaces.py (`--param` adds to it); the
trials train exactly as the family's train/ script does, with its flags passed through. Budget,
resume, pruning, objectives and workers: docs/search.md.
"""

from imdb_sentiment import search
from imdb_sentiment.errors import run_main


def main(argv=None):
    return search.main("lora", argv, prog="search/lora.py", description=__doc__)


if __name__ == "__main__":
    run_main(main)
