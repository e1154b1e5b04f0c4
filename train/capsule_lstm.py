"""make train-capsule-lstm   (or: python train/capsule_lstm.py --help)

BiLSTM states as primary capsules, dynamic routing (Sabour et al. 2017)
with the squash non-linearity to output capsules, linear on their poses.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("capsule-lstm", __doc__)
