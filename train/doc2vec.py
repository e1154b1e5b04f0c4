"""make train-doc2vec   (or: python train/doc2vec.py --help)

PV-DBOW document vectors (gensim Doc2Vec) trained on the training split and the
unlabelled reviews, a logistic regression on them; validation and test vectors
are inferred. `--transductive` also trains on the test reviews' text (a run of
its own row, doc2vec-transductive).
"""

from imdb_sentiment.cli import main

if __name__ == "__main__":
    main("doc2vec", __doc__)
