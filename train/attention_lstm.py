"""make train-attention-lstm   (or: python train/attention_lstm.py --help)

BiLSTM with additive attention over its time steps (padding masked out
before the softmax over time); the attention-weighted sum feeds a linear layer.
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.errors import run_main
from imdb_sentiment.pipeline import EmbeddingConfig, run_embedding_family

DEFAULTS = {"model": "attention-lstm", "epochs": 3}


def main(argv=None):
    config = parse_config(EmbeddingConfig, argv, prog="train/attention_lstm.py", description=__doc__, defaults=DEFAULTS)
    run_embedding_family(config, family="attention-lstm")


if __name__ == "__main__":
    run_main(main)
