"""make train-cnn-lstm   (or: python train/cnn_lstm.py --help)

Convolution features along the time axis, max-pooled by 2 in time, then a
BiLSTM over those time steps; masked max+mean pooling.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("cnn-lstm", __doc__)
