"""make train-roberta   (or: python train/roberta.py --help)

Full fine-tuning of RoBERTa (roberta-base by default).
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.encoders import EncoderConfig, family_name, run_encoder
from imdb_sentiment.errors import run_main

DEFAULTS = {"model": "roberta-base"}


def main(argv=None):
    config = parse_config(EncoderConfig, argv, prog="train/roberta.py", description=__doc__, defaults=DEFAULTS)
    run_encoder(config, family=family_name("roberta", config))


if __name__ == "__main__":
    run_main(main)
