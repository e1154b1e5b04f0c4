"""make train-bert   (or: python train/bert.py --help)

Full fine-tuning of BERT (bert-base-uncased by default; any encoder via --model):
dynamic padding, length-grouped batches, head+tail truncation, best epoch restored.
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.encoders import EncoderConfig, family_name, run_encoder
from imdb_sentiment.errors import run_main

DEFAULTS = {"model": "bert-base-uncased"}


def main(argv=None):
    config = parse_config(EncoderConfig, argv, prog="train/bert.py", description=__doc__, defaults=DEFAULTS)
    run_encoder(config, family=family_name("bert", config))


if __name__ == "__main__":
    run_main(main)
