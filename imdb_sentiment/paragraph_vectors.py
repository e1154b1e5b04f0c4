"""PV-DBOW document vectors as a logged model uses them: a review's words, the arrays inference
needs (Doc2VecState), and inference that gives a review the same vector in any process.

    vector = infer_vector(state, document_words(review, ngrams), seed, epochs)

gensim's own infer_vector cannot be repeated in another process: its starting vector hashes the
words with Python's hash(), which changes per process, and an empty review draws from a shared
generator. Here a review's vector starts from a draw seeded by the seed and a stable hash (crc32)
of its words, and the model's random state is reseeded before each review, so the vector depends
on the model, the seed and the words alone. Training is the doc2vec recipe's
(imdb_sentiment/recipes/doc2vec.py); this module is what serving.py loads, without torch.
"""

import zlib
from dataclasses import dataclass

import numpy as np

from . import text

# gensim's default learning rates, linearly decayed in training and in inference alike.
ALPHA, MIN_ALPHA = 0.025, 0.0001


def document_words(review: str, ngrams: int) -> list[str]:
    """A review's tokens as Doc2Vec reads them: its words (text.review_to_tokens), then with
    ngrams 2 each adjacent pair joined by `_`."""
    words = text.review_to_tokens(review)
    if ngrams == 2:
        words += [f"{first}_{second}" for first, second in zip(words, words[1:])]
    return words


@dataclass
class Doc2VecState:
    """What inferring a review's PV-DBOW vector needs of a trained model, as plain arrays: the
    vocabulary, the output weights (syn1neg), the negative-sampling table and the per-word
    down-sampling thresholds. The input word vectors and trained document vectors are not needed.
    The cache and the logged model store this (gensim's own save would pickle the model)."""
    words: list[str]
    syn1neg: np.ndarray     # [words, vector_size] float32
    cum_table: np.ndarray   # [words] uint32
    sample_int: np.ndarray  # [words] uint32
    settings: dict          # vector_size, negative, sample, ngrams, infer_epochs, seed

    ARRAYS = ("syn1neg", "cum_table", "sample_int")

    @classmethod
    def from_model(cls, model, settings: dict) -> "Doc2VecState":
        return cls(list(model.wv.index_to_key), model.syn1neg.copy(), model.cum_table.copy(),
                   model.wv.expandos["sample_int"].copy(), settings)

    def arrays(self) -> dict:
        return {name: np.ascontiguousarray(getattr(self, name)) for name in self.ARRAYS}

    def inference_model(self):
        """A gensim Doc2Vec holding just what infer_vector reads, so inference is gensim's own."""
        from gensim.models.doc2vec import Doc2Vec

        s = self.settings
        model = Doc2Vec(vector_size=s["vector_size"], dm=0, hs=0, negative=s["negative"], sample=s["sample"],
                        alpha=ALPHA, min_alpha=MIN_ALPHA, epochs=s["infer_epochs"], seed=s["seed"], workers=1)
        model.wv.index_to_key = self.words
        model.wv.key_to_index = {word: index for index, word in enumerate(self.words)}
        # Read only when words train (never in inference), but gensim takes their address.
        model.wv.vectors = np.zeros((1, s["vector_size"]), dtype=np.float32)
        model.wv.vectors_lockf = np.ones(1, dtype=np.float32)
        model.wv.expandos = {"sample_int": self.sample_int}
        model.syn1neg, model.cum_table = self.syn1neg, self.cum_table
        return model

    def inferrer(self, progress: bool = False):
        """reviews -> their vectors [n, vector_size], each inferred alone (infer_vector below)."""
        model = self.inference_model()
        ngrams = self.settings["ngrams"]

        def infer(reviews, what: str = "reviews") -> np.ndarray:
            from tqdm.auto import tqdm

            vectors = np.empty((len(reviews), model.vector_size), dtype=np.float32)
            for row, review in enumerate(tqdm(reviews, desc=f"doc2vec: inferring {what}", disable=not progress,
                                              mininterval=2.0, leave=False)):
                vectors[row] = infer_vector(model, document_words(review, ngrams), self.settings["seed"],
                                            self.settings["infer_epochs"])
            return vectors

        return infer


def start_vector(words: list[str], size: int, seed: int) -> np.ndarray:
    """Where inferring a document's vector starts: drawn from its words and the seed. gensim's own
    start hashes the words with Python's hash(), which changes per process (and draws from a
    shared generator for an empty document): a logged model would infer other vectors than its run."""
    rng = np.random.default_rng([seed, zlib.crc32(" ".join(words).encode("utf-8"))])
    return ((rng.random(size) - 0.5) / size).astype(np.float32)


def infer_vector(model, words: list[str], seed: int, epochs: int) -> np.ndarray:
    """gensim's Doc2Vec.infer_vector for PV-DBOW (the output weights fixed, the learning rate
    decayed linearly from ALPHA to MIN_ALPHA), from start_vector and with the model's random
    state (negative samples, down-sampling) reseeded: the vector depends on the model, the seed
    and the words alone, not on the process or the documents inferred before."""
    from gensim.models.doc2vec_inner import train_document_dbow

    vector = start_vector(words, model.vector_size, seed).reshape(1, -1)
    lockf, work = np.ones(1, dtype=np.float32), np.zeros(model.layer1_size, dtype=np.float32)
    model.random.seed(seed)
    alpha, step = ALPHA, (ALPHA - MIN_ALPHA) / max(epochs - 1, 1)
    for _ in range(epochs):
        train_document_dbow(model, words, [0], alpha, work, learn_words=False, learn_hidden=False,
                            doctag_vectors=vector, doctags_lockf=lockf)
        alpha -= step
    return vector[0]


def probabilities(vectors: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """P(positive) of a binary logistic regression (sklearn's coef_, intercept_), in float64:
    the run and its logged model compute it here, the same way."""
    logits = vectors.astype(np.float64) @ np.asarray(coef, dtype=np.float64).reshape(-1) + float(intercept[0])
    return 1.0 / (1.0 + np.exp(-logits))
