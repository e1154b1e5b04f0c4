"""make train-scl-lora   (or: python train/scl_lora.py --help)

CE plus supervised contrastive loss with LoRA (BERT by default): only the
adapters and the head train.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("scl-lora", __doc__)
