"""make train-modernbert   (or: python train/modernbert.py --help)

Full fine-tuning of ModernBERT (answerdotai/ModernBERT-base by default).
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.encoders import EncoderConfig, family_name, run_encoder
from imdb_sentiment.errors import run_main

DEFAULTS = {"model": "answerdotai/ModernBERT-base", "lr": 5e-5}


def main(argv=None):
    config = parse_config(EncoderConfig, argv, prog="train/modernbert.py", description=__doc__, defaults=DEFAULTS)
    run_encoder(config, family=family_name("modernbert", config))


if __name__ == "__main__":
    run_main(main)
