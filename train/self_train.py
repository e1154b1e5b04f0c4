"""make train-self-train   (or: python train/self_train.py --help)

Self-training: a TF-IDF NB-LR student fitted to the labelled training split and the 50,000
unlabelled reviews labelled by a teacher (by default the best finished ensemble run; --teacher
RUN_ID), hard labels above --threshold or soft targets (--targets), for --rounds rounds in which
the last student labels them again. The teacher's probabilities are cached by its run id.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("self-train", __doc__)
