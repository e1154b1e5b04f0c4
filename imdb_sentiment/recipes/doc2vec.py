"""The doc2vec recipe: PV-DBOW document vectors (gensim Doc2Vec) and a logistic regression on them.

    python train/doc2vec.py                   # inductive: test reviews never train
    python train/doc2vec.py --transductive    # as Le & Mikolov (2014): a row of its own

What is special about it:
- Doc2Vec (PV-DBOW, with skip-gram word co-training unless --no-dbow-words)
  trains one tagged document per training review and per unlabelled review
  (at most 2N with --limit N). Validation reviews never train. --transductive
  adds the test reviews' text, never their labels; the run is then tagged
  `doc2vec-transductive` and `transductive=true` (families.family_tag).
- Every split's vectors are inferred with the trained model, the test split's
  in both modes (--transductive only adds text to training), so one procedure
  makes every vector the classifier sees and the logged model repeats it.
- Inference is deterministic: a review's vector starts from a draw seeded by
  --seed and a stable hash of its words, and the model's random state
  (negative samples, down-sampling) is reseeded with --seed before each
  review (infer_vector). A review's vector depends on the model, the seed and
  its words alone: not on the process, nor on the reviews scored with it.
- The trained model is cached in data/cache/ as the arrays inference needs,
  keyed by every input file's sha256 and every setting; a second run trains
  nothing. Inferred vectors are not cached: scoring the test reviews is the
  cost of using the model, which the run skeleton times.
The run itself (data, MLflow, test report) is imdb_sentiment/runs.py's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import text
from ..paragraph_vectors import ALPHA, MIN_ALPHA, Doc2VecState, document_words, probabilities
from ..runs import Prepared, Trained, fitted_once

if TYPE_CHECKING:  # the config's checks and the data stack load with the run, not with this module
    from ..config import Doc2VecConfig
    from ..data import Splits

# --- training -------------------------------------------------------------------------------

def training_documents(config: Doc2VecConfig, splits: Splits) -> tuple[list, dict]:
    """(TaggedDocuments, how many came from each part): one per training review, per unlabelled
    review (at most 2N with --limit N) and, with --transductive, per test review, its text only.
    A document's tag is `<part>:<review id>`; no validation review is ever one."""
    from gensim.models.doc2vec import TaggedDocument

    from .. import data

    parts = {"train": splits.train}
    if config.unlabeled:
        parts["unlabeled"] = data.unlabelled_reviews(config.data_dir, 2 * config.limit if config.limit else None)
    if config.transductive:
        parts["test"] = splits.test[["id", "review"]]  # the labels stay behind
    documents = [TaggedDocument([sys.intern(w) for w in document_words(review, config.ngrams)], [f"{part}:{id_}"])
                 for part, rows in parts.items() for id_, review in zip(rows["id"], rows["review"])]
    return documents, {part: len(rows) for part, rows in parts.items()}


def resolved_workers(config: Doc2VecConfig) -> int:
    return config.workers or os.cpu_count() or 1


def cache_path(config: Doc2VecConfig) -> Path:
    """Where the trained model's inference state is cached: keyed by each file it trains on and
    every setting that shapes it (the split's settings too: the training split is in it)."""
    from .. import data, paths

    files = {kind: data.kaggle_sha256(config.data_dir, kind) for kind, used in
             (("labeled", True), ("unlabeled", config.unlabeled), ("test", config.transductive)) if used}
    key = text.cache_key(kind="doc2vec", files=files, limit=config.limit, seed=config.seed,
                         val_fraction=config.val_fraction, vector_size=config.vector_size, epochs=config.epochs,
                         dbow_words=config.dbow_words, window=config.window, ngrams=config.ngrams,
                         min_count=config.min_count, negative=config.negative, sample=config.sample,
                         alpha=ALPHA, min_alpha=MIN_ALPHA, workers=resolved_workers(config),
                         transductive=config.transductive, unlabeled=config.unlabeled,
                         unlabeled_less_copies=True)  # data.unlabelled_reviews
    return paths.cache_dir(Path(config.data_dir)) / f"doc2vec-{key}.npz"


def load_or_train(config: Doc2VecConfig, splits: Splits) -> tuple[Doc2VecState, dict]:
    """(the trained model's inference state, what to log about it), from the cache when it holds one."""
    from gensim.models.doc2vec import Doc2Vec

    from ..embeddings import json_array, progress_callback, save_cache, stable_hash

    settings = {"vector_size": config.vector_size, "negative": config.negative, "sample": config.sample,
                "ngrams": config.ngrams, "infer_epochs": config.infer_epochs, "seed": config.seed}
    path = cache_path(config)
    if path.exists():
        with np.load(path) as stored:
            words = json.loads(stored["words"].tobytes().decode())
            state = Doc2VecState(words, *(stored[name] for name in Doc2VecState.ARRAYS), settings)
            counts = json.loads(stored["documents"].tobytes().decode())
        return state, {"doc2vec_cached": True, **{f"documents_{k}": v for k, v in counts.items()}}
    started = time.perf_counter()
    documents, counts = training_documents(config, splits)
    print(f"training doc2vec on {len(documents)} documents ({', '.join(f'{v} {k}' for k, v in counts.items())}) "
          "...", flush=True)
    # hashfxn: gensim seeds each initial vector from hash(word + seed); Python's hash() changes per process.
    model = Doc2Vec(documents=documents, dm=0, dbow_words=int(config.dbow_words), vector_size=config.vector_size,
                    window=config.window, min_count=config.min_count, hs=0, negative=config.negative,
                    sample=config.sample, epochs=config.epochs, alpha=ALPHA, min_alpha=MIN_ALPHA, seed=config.seed,
                    workers=resolved_workers(config), hashfxn=stable_hash,
                    callbacks=[progress_callback("doc2vec")])
    state = Doc2VecState.from_model(model, settings)
    save_cache(path, "the doc2vec model", **state.arrays(), words=json_array(state.words),
               documents=json_array(counts))
    return state, {"doc2vec_cached": False, "doc2vec_seconds": round(time.perf_counter() - started, 1),
                   **{f"documents_{k}": v for k, v in counts.items()}}


# --- the recipe -------------------------------------------------------------------------------

def prepare(config: Doc2VecConfig) -> Prepared:
    import torch

    return Prepared(torch.device("cpu"), model="pv-dbow",
                    tags={"transductive": "true" if config.transductive else "false"},
                    params={"workers_resolved": resolved_workers(config)})


def train(config: Doc2VecConfig, prepared: Prepared, splits: Splits, on_epoch) -> Trained:
    from sklearn.linear_model import LogisticRegression

    from .. import serving, tracking
    from ..metrics import accuracy

    started = time.perf_counter()
    state, info = load_or_train(config, splits)
    tracking.log_params({**info, "doc2vec_vocab": len(state.words)})
    infer = state.inferrer(config.progress)
    # The training split's vectors are inferred too, not the ones training left in model.dv: the
    # classifier then learns on vectors made as the test ones are (Mesnil et al. 2014 re-infer
    # them as well); trained vectors fit a moving output layer and sit elsewhere. It costs a
    # second pass over the training reviews.
    vectors = {name: infer(list(getattr(splits, name)["review"]), name) for name in ("train", "val")}
    classifier = LogisticRegression(C=config.C, max_iter=1000, random_state=config.seed)
    classifier.fit(vectors["train"].astype(np.float64), splits.train["label"].to_numpy())
    coef, intercept = classifier.coef_, classifier.intercept_

    def predict(name):
        found = vectors[name] if name in vectors else infer(list(getattr(splits, name)["review"]), name)
        return probabilities(found, coef, intercept)

    probs = {name: predict(name) for name in vectors}
    result = fitted_once({"train_acc": accuracy(splits.train["label"], probs["train"]),
                          "val_acc": accuracy(splits.val["label"], probs["val"])}, started, on_epoch)

    def log_model(threshold):
        serving.log_doc2vec_model(state, coef, intercept, threshold, {"family": "doc2vec",
                                                                      "transductive": config.transductive})

    # What the logged model holds and uses: the output weights and the classifier.
    size = int(state.syn1neg.size + coef.size + intercept.size)
    # Test reviews are inferred and scored when the run skeleton asks (and times) them.
    return Trained(result, size, lambda name: probs[name] if name in probs else predict(name), log_model)
