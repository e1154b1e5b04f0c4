"""make train-deberta   (or: python train/deberta.py --help)

Full fine-tuning of DeBERTa-v3 (microsoft/deberta-v3-base by default).
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("deberta", __doc__)
