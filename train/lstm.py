"""make train-lstm   (or: python train/lstm.py --help)

Bidirectional LSTM on word2vec vectors trained on the labelled and
unlabelled reviews; packed sequences, masked max+mean pooling.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("lstm", __doc__)
