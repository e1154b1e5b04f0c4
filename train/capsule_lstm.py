"""make train-capsule-lstm   (or: python train/capsule_lstm.py --help)

BiLSTM states as primary capsules, dynamic routing (Sabour et al. 2017)
with the squash non-linearity to output capsules, linear on their poses.
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.errors import run_main
from imdb_sentiment.pipeline import EmbeddingConfig, run_embedding_family

DEFAULTS = {"model": "capsule-lstm", "epochs": 3}


def main(argv=None):
    config = parse_config(EmbeddingConfig, argv, prog="train/capsule_lstm.py", description=__doc__, defaults=DEFAULTS)
    run_embedding_family(config, family="capsule-lstm")


if __name__ == "__main__":
    run_main(main)
