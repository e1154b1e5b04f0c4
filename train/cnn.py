"""make train-cnn   (or: python train/cnn.py --help)

Kim (2014) CNN: convolutions of widths 3, 4 and 5 over word2vec vectors,
max-over-time taken over a review's real positions only, dropout, linear.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("cnn", __doc__)
