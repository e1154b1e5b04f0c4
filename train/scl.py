"""make train-scl   (or: python train/scl.py --help)

Supervised contrastive fine-tuning (BERT by default): loss = CE + --scl-lambda x
SupCon on L2-normalised mean-pooled features (temperature --scl-temperature),
training only.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("scl", __doc__)
