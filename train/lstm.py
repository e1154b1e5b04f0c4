"""make train-lstm   (or: python train/lstm.py --help)

Bidirectional LSTM on word2vec vectors trained on the labelled and
unlabelled reviews; packed sequences, masked max+mean pooling.
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.errors import run_main
from imdb_sentiment.pipeline import EmbeddingConfig, run_embedding_family

DEFAULTS = {"model": "lstm", "epochs": 3}


def main(argv=None):
    config = parse_config(EmbeddingConfig, argv, prog="train/lstm.py", description=__doc__, defaults=DEFAULTS)
    run_embedding_family(config, family="lstm")


if __name__ == "__main__":
    run_main(main)
