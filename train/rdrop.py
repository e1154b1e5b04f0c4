"""make train-rdrop   (or: python train/rdrop.py --help;  make train-rdrop-lora)

R-Drop fine-tuning (BERT by default): each batch runs through the model twice
with different dropout; loss = CE on both + --rdrop-alpha x symmetric KL.
One pass at inference. --method lora gives the rdrop-lora row.
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.encoders import EncoderConfig, family_name, run_encoder
from imdb_sentiment.errors import run_main

DEFAULTS = {"model": "bert-base-uncased", "regulariser": "rdrop"}


def main(argv=None):
    config = parse_config(EncoderConfig, argv, prog="train/rdrop.py", description=__doc__, defaults=DEFAULTS)
    run_encoder(config, family=family_name("rdrop", config))


if __name__ == "__main__":
    run_main(main)
