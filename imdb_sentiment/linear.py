"""The TF-IDF family: hashed word n-grams, TF-IDF, naive-Bayes log-count ratios,
logistic regression (NB-LR, after Wang & Manning 2012), as one sklearn Pipeline
that takes raw reviews, so the logged model predicts from text directly."""

import sys
import warnings
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from .text import review_to_tokens


class NgramAnalyzer:
    """Review -> its cleaned tokens (at most max_tokens, head kept) and their 2..n-grams."""

    def __init__(self, max_n: int, max_tokens: int):
        self.max_n = max_n
        self.max_tokens = max_tokens

    def __call__(self, review: str) -> list[str]:
        tokens = review_to_tokens(review)[: self.max_tokens]
        grams = list(tokens)
        for n in range(2, self.max_n + 1):
            grams.extend(" ".join(gram) for gram in zip(*(tokens[i:] for i in range(n))))
        return grams


class NaiveBayesScaler(BaseEstimator, TransformerMixin):
    """Scale each feature by its log-count ratio between the classes.

    Features seen in fewer than min_df training reviews get weight 0: with
    hashed features there is no vocabulary to prune, and rare n-grams are
    noise that the ratio would otherwise amplify.
    """

    def __init__(self, alpha: float = 1.0, min_df: int = 2):
        self.alpha = alpha
        self.min_df = min_df

    def fit(self, X, y, sample_weight=None):
        """sample_weight: a weight per row (soft targets come as each review twice, labelled
        1 with weight q and 0 with weight 1 - q: the counts are then expected counts)."""
        X = sp.csr_matrix(X)
        y = np.asarray(y)
        weight = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        positive = np.asarray(X[y == 1].T @ weight[y == 1]).ravel() + self.alpha
        negative = np.asarray(X[y == 0].T @ weight[y == 0]).ravel() + self.alpha
        ratio = np.log((positive / positive.sum()) / (negative / negative.sum()))
        document_frequency = np.bincount(X.indices, weights=np.repeat(weight, np.diff(X.indptr)),
                                         minlength=X.shape[1])
        ratio[document_frequency < self.min_df] = 0.0
        self.ratio_ = ratio.astype(np.float32)
        return self

    def transform(self, X):
        return sp.csr_matrix(X) @ sp.diags(self.ratio_)


# Our classes inside the pipeline: MLflow's skops format loads only types it is told to trust.
OWN_TYPES = [f"{__name__}.NgramAnalyzer", f"{__name__}.NaiveBayesScaler"]


def build_pipeline(max_n: int, max_tokens: int, hash_bits: int, min_df: int, C: float,
                   max_iter: int, seed: int) -> Pipeline:
    return Pipeline([
        ("ngrams", HashingVectorizer(analyzer=NgramAnalyzer(max_n, max_tokens), n_features=2 ** hash_bits,
                                     alternate_sign=False, norm=None, dtype=np.float32)),
        ("tfidf", TfidfTransformer(sublinear_tf=True)),
        ("naive_bayes", NaiveBayesScaler(min_df=min_df)),
        # Dual coordinate descent: one iteration is one pass over the reviews, and
        # with far more features than reviews the dual is the fast side.
        ("classifier", LogisticRegression(C=C, solver="liblinear", dual=True, max_iter=max_iter,
                                          random_state=seed)),
    ])


@contextmanager
def solver_stop_noted(pipeline: Pipeline):
    """Fit the pipeline's classifier inside: a solver that stops at its pass cap before converging
    is one line on stderr naming --max-iter, in place of sklearn's ConvergenceWarning. A note, not
    an error: near the cap the model is often fine, and the run's solver_passes param records it."""
    classifier = pipeline.named_steps["classifier"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield
    passes = int(np.max(classifier.n_iter_))
    if passes >= classifier.max_iter:
        print(f"note: the logistic regression's solver stopped at its pass cap (--max-iter {classifier.max_iter}) "
              "before converging; its predictions may be poor (the full data converges in about 155 passes): "
              "raise --max-iter", file=sys.stderr, flush=True)


def hash_in_parallel(vectorizer: HashingVectorizer, reviews, n_jobs: int):
    """HashingVectorizer is stateless: chunks of reviews hash on every core at once."""
    from joblib import Parallel, delayed

    reviews = list(reviews)
    chunks = np.array_split(np.arange(len(reviews)), max(1, n_jobs))
    parts = Parallel(n_jobs=n_jobs)(delayed(vectorizer.transform)([reviews[i] for i in chunk])
                                    for chunk in chunks if len(chunk))
    return sp.vstack(parts).tocsr()


def score(pipeline: Pipeline, reviews) -> np.ndarray:
    """P(positive) of each review by a fitted build_pipeline pipeline, hashing on every core."""
    import os

    features = hash_in_parallel(pipeline.steps[0][1], reviews, os.cpu_count() or 1)
    return pipeline[1:].predict_proba(features)[:, 1]


def fit_soft(pipeline: Pipeline, features, targets) -> Pipeline:
    """Fit a build_pipeline pipeline, after its hashing step, to soft targets: `features` are the
    hashed reviews, `targets` P(positive) per review in [0, 1].

    Cross-entropy against a soft target q is that of label 1 with weight q plus label 0 with
    weight 1 - q, so each review enters the naive-Bayes ratios and the logistic regression
    twice, with those weights; IDF is fitted on the reviews once. Hard 0/1 targets give the
    ordinary fit.
    """
    targets = np.asarray(targets, dtype=np.float64)
    tfidf, naive_bayes, classifier = (pipeline.named_steps[name] for name in ("tfidf", "naive_bayes", "classifier"))
    weighted = tfidf.fit_transform(features)
    doubled = sp.vstack([weighted, weighted]).tocsr()
    labels = np.concatenate([np.ones(len(targets), dtype=int), np.zeros(len(targets), dtype=int)])
    weights = np.concatenate([targets, 1.0 - targets])
    keep = weights > 0  # a row of weight 0 adds nothing; liblinear need not see it
    doubled, labels, weights = doubled[keep], labels[keep], weights[keep]
    scaled = naive_bayes.fit(doubled, labels, sample_weight=weights).transform(doubled)
    classifier.fit(scaled, labels, sample_weight=weights)
    return pipeline
