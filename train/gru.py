"""make train-gru   (or: python train/gru.py --help)

Bidirectional GRU on word2vec vectors; each direction runs within a review's
length (padding never read), masked max+mean pooling over time.
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.errors import run_main
from imdb_sentiment.pipeline import EmbeddingConfig, run_embedding_family

DEFAULTS = {"model": "gru", "epochs": 3}


def main(argv=None):
    config = parse_config(EmbeddingConfig, argv, prog="train/gru.py", description=__doc__, defaults=DEFAULTS)
    run_embedding_family(config, family="gru")


if __name__ == "__main__":
    run_main(main)
