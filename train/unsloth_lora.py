"""make train-unsloth-modernbert | train-unsloth-deberta   (or: python train/unsloth_lora.py --help)

LoRA through unsloth's FastModel (answerdotai/ModernBERT-large by default;
the deberta target passes --model microsoft/deberta-v2-xxlarge). CUDA GPU
only: `make setup-gpu` installs unsloth (requirements-gpu.txt). Without a GPU
it stops before importing unsloth; on CPU use `make train-deberta-lora`
(train/peft_deberta.py --method lora).
"""

from imdb_sentiment.config import parse_config
from imdb_sentiment.encoders import EncoderConfig, run_encoder
from imdb_sentiment.errors import run_main

DEFAULTS = {"model": "answerdotai/ModernBERT-large", "method": "lora", "backend": "unsloth", "lora_r": 16,
            "lora_alpha": 32, "batch_size": 32, "gradient_checkpointing": True}
# Table rows are named by architecture (the reference's unsloth-deberta / unsloth-modernbert),
# read from the name: reading the model's config would import transformers before unsloth.
ARCHITECTURES = ("deberta", "modernbert", "roberta", "bert")


def family_for(model: str) -> str:
    lowered = model.lower()
    return "unsloth-" + next((name for name in ARCHITECTURES if name in lowered), "encoder")


def main(argv=None):
    config = parse_config(EncoderConfig, argv, prog="train/unsloth_lora.py", description=__doc__,
                          defaults=DEFAULTS)
    run_encoder(config, family=family_for(config.model))


if __name__ == "__main__":
    run_main(main)
