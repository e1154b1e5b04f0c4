"""make train-scl   (or: python train/scl.py --help;  make train-scl-lora)

Supervised contrastive fine-tuning (BERT by default): loss = CE + --scl-lambda x
SupCon on L2-normalised mean-pooled features (temperature --scl-temperature),
training only. --method lora gives the scl-lora row.
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.encoders import EncoderConfig, family_name, run_encoder
from imdb_sentiment.errors import run_main

DEFAULTS = {"model": "bert-base-uncased", "regulariser": "scl"}


def main(argv=None):
    config = parse_config(EncoderConfig, argv, prog="train/scl.py", description=__doc__, defaults=DEFAULTS)
    run_encoder(config, family=family_name("scl", config))


if __name__ == "__main__":
    run_main(main)
