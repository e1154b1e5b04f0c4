"""make train-cnn-lstm   (or: python train/cnn_lstm.py --help)

Convolution features along the time axis, max-pooled by 2 in time, then a
BiLSTM over those time steps; masked max+mean pooling.
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.errors import run_main
from imdb_sentiment.pipeline import EmbeddingConfig, run_embedding_family

DEFAULTS = {"model": "cnn-lstm", "epochs": 3, "num_filters": 128, "filter_sizes": "3", "pool_size": 2}


def main(argv=None):
    config = parse_config(EmbeddingConfig, argv, prog="train/cnn_lstm.py", description=__doc__, defaults=DEFAULTS)
    run_embedding_family(config, family="cnn-lstm")


if __name__ == "__main__":
    run_main(main)
