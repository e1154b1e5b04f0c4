"""make train-deberta   (or: python train/deberta.py --help)

Full fine-tuning of DeBERTa-v3 (microsoft/deberta-v3-base by default).
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.encoders import EncoderConfig, family_name, run_encoder
from imdb_sentiment.errors import run_main

DEFAULTS = {"model": "microsoft/deberta-v3-base"}


def main(argv=None):
    config = parse_config(EncoderConfig, argv, prog="train/deberta.py", description=__doc__, defaults=DEFAULTS)
    run_encoder(config, family=family_name("deberta", config))


if __name__ == "__main__":
    run_main(main)
