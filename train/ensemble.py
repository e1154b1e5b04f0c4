"""make train-ensemble   (or: python train/ensemble.py --help)

`make ensemble` is the same target. It
stacks finished runs: logistic regression on the members' logits of P(positive),
fitted on their validation predictions only (out-of-fold accuracy reported),
with the plain mean of their probabilities as the baseline. Members: each
family's best finished run (--families lstm,tfidf,...; default every family)
or the runs named (--runs ID,ID). They must share the validation split.
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("ensemble", __doc__)
