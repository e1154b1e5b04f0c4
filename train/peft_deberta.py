"""make train-deberta-lora | train-deberta-ptuning | train-deberta-prompt | train-deberta-prefix
(or: python train/peft_deberta.py --method lora --help)

Parameter-efficient fine-tuning of DeBERTa (microsoft/deberta-v3-base by
default; the reference used microsoft/deberta-v2-xxlarge with --quantize 8bit):
LoRA, P-tuning, prompt tuning (classifier head trainable) or prefix tuning
(BERT / RoBERTa only: on DeBERTa it stops with a one-line error).
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.encoders import EncoderConfig, family_name, run_encoder
from imdb_sentiment.errors import run_main

DEFAULTS = {"model": "microsoft/deberta-v3-base", "method": "lora"}


def main(argv=None):
    config = parse_config(EncoderConfig, argv, prog="train/peft_deberta.py", description=__doc__,
                          defaults=DEFAULTS)
    run_encoder(config, family=family_name("deberta", config))


if __name__ == "__main__":
    run_main(main)
