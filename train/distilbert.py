"""make train-distilbert   (or: python train/distilbert.py --help)

Full fine-tuning of DistilBERT (distilbert-base-uncased by default).
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("distilbert", __doc__)
