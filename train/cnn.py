"""make train-cnn   (or: python train/cnn.py --help)

Kim (2014) CNN: convolutions of widths 3, 4 and 5 over word2vec vectors,
max-over-time taken over a review's real positions only, dropout, linear.
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.errors import run_main
from imdb_sentiment.pipeline import EmbeddingConfig, run_embedding_family

DEFAULTS = {"model": "cnn", "epochs": 3, "dropout": 0.5}


def main(argv=None):
    config = parse_config(EmbeddingConfig, argv, prog="train/cnn.py", description=__doc__, defaults=DEFAULTS)
    run_embedding_family(config, family="cnn")


if __name__ == "__main__":
    run_main(main)
