"""make train-attention-lstm   (or: python train/attention_lstm.py --help)

BiLSTM with additive attention over its time steps (padding masked out
before the softmax over time); the attention-weighted sum feeds a linear layer.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("attention-lstm", __doc__)
