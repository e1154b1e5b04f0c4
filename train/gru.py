"""make train-gru   (or: python train/gru.py --help)

Bidirectional GRU on word2vec vectors; each direction runs within a review's
length (padding never read), masked max+mean pooling over time.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("gru", __doc__)
