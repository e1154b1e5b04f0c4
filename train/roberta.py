"""make train-roberta   (or: python train/roberta.py --help)

Full fine-tuning of RoBERTa (roberta-base by default).
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("roberta", __doc__)
