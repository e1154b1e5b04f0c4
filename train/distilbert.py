"""make train-distilbert   (or: python train/distilbert.py --help)

Full fine-tuning of DistilBERT (distilbert-base-uncased by default).
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.encoders import EncoderConfig, family_name, run_encoder
from imdb_sentiment.errors import run_main

DEFAULTS = {"model": "distilbert-base-uncased", "batch_size": 32, "lr": 5e-5}


def main(argv=None):
    config = parse_config(EncoderConfig, argv, prog="train/distilbert.py", description=__doc__, defaults=DEFAULTS)
    run_encoder(config, family=family_name("distilbert", config))


if __name__ == "__main__":
    run_main(main)
