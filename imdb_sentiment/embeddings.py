"""Word vectors for the embedding families: word2vec trained here, a file, or random.

word2vec is trained with gensim on the training split plus the unlabelled
reviews (the competition's own recipe), printing a line per epoch, and cached
on disk. A single worker and a hash function that does not depend on
PYTHONHASHSEED make it the same vectors on every run with the same seed.
"""

import json
import os
import time
import zlib
from pathlib import Path

import numpy as np

from .errors import UserError
from .text import PAD_ID, UNK_ID, Vocab


def stable_hash(text: str) -> int:
    # gensim seeds each word's initial vector with hashfxn(word + seed); Python's
    # own hash() changes per process, which would make word2vec unrepeatable.
    return zlib.crc32(text.encode("utf-8"))


def progress_callback(name: str = "word2vec"):
    """A gensim callback printing a line when the vocabulary is built and after each epoch, each
    starting with `name` (word2vec, doc2vec: a Doc2Vec model's line counts its documents too).

    The full data takes minutes with one worker; without these lines the
    screen stays blank. Callbacks only observe: the vectors are unchanged.
    """
    from gensim.models.callbacks import CallbackAny2Vec

    class Progress(CallbackAny2Vec):
        def __init__(self):
            self.started = time.perf_counter()
            self.epoch = 0

        def elapsed(self) -> str:
            return f"{time.perf_counter() - self.started:.1f}s elapsed"

        def on_train_begin(self, model):
            documents = f"{len(model.dv)} documents, " if hasattr(model, "dv") else ""
            print(f"{name}: {len(model.wv.index_to_key)} words in the vocabulary, {documents}"
                  f"{model.epochs} epochs to train ({self.elapsed()})", flush=True)

        def on_epoch_end(self, model):
            self.epoch += 1
            print(f"{name}: epoch {self.epoch}/{model.epochs} done ({self.elapsed()})", flush=True)

    return Progress()


def train_word2vec(token_lists, dim: int, seed: int, epochs: int = 5, window: int = 5,
                   min_count: int = 2, workers: int = 1):
    """A gensim KeyedVectors trained on token lists, printing its progress."""
    from gensim.models import Word2Vec

    model = Word2Vec(sentences=token_lists, vector_size=dim, window=window, min_count=min_count,
                     workers=workers, epochs=epochs, seed=seed, hashfxn=stable_hash, sg=0,
                     negative=5, sample=1e-4, callbacks=[progress_callback()])
    return model.wv


def load_or_train_word2vec(cache_path: Path, token_lists_fn, **settings):
    """(vectors as {word: array}, whether they came from the cache).

    Cached as one .npz (words and matrix): gensim's own save writes big arrays
    to side files, which an atomic rename of the main file would leave behind.
    """
    if cache_path.exists():
        with np.load(cache_path) as stored:
            words = json.loads(stored["words"].tobytes().decode())
            return dict(zip(words, stored["vectors"])), True
    vectors = train_word2vec(token_lists_fn(), **settings)
    save_cache(cache_path, "word2vec vectors", words=json_array(list(vectors.index_to_key)), vectors=vectors.vectors)
    return {word: vectors[word] for word in vectors.index_to_key}, False


def json_array(value) -> np.ndarray:
    """A JSON-able value as bytes in an array, to keep beside others in one .npz (json.loads(a.tobytes()))."""
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)


def save_cache(path: Path, what: str, **arrays) -> None:
    """Write `arrays` as the .npz cache at `path`, whole: this process's own temporary name, then a
    rename, so two runs filling one cache at once each write whole files and one becomes the cache.
    A cache that cannot be written (a read-only data dir) is a note: the run goes on without it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
    except OSError as error:
        print(f"note: cannot cache {what} at {path} ({error})")


def read_vectors_file(path: Path) -> dict[str, np.ndarray]:
    """GloVe / word2vec vectors: text with or without a header line, or word2vec binary."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--embeddings {path}: file not found")
    with open(path, "rb") as handle:
        first = handle.readline()
    try:
        header = first.decode("utf-8").split()
        is_text = True
    except UnicodeDecodeError:
        header, is_text = [], False
    if len(header) == 2 and all(part.isdigit() for part in header):
        from gensim.models import KeyedVectors
        binary = not _second_line_is_text(path, int(header[1]))
        try:
            kv = KeyedVectors.load_word2vec_format(str(path), binary=binary)
        except (ValueError, UnicodeDecodeError, EOFError) as error:
            raise UserError(f"--embeddings {path}: not a word2vec file ({error})") from None
        return {word: kv[word] for word in kv.index_to_key}
    if not is_text:
        raise UserError(f"--embeddings {path}: binary file without a word2vec header")
    vectors, dim = {}, None
    with open(path, encoding="utf-8", errors="strict") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip().split(" ")
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise UserError(f"{path}:{number}: {len(parts) - 1} numbers, expected {dim}")
            try:
                vectors[parts[0]] = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise UserError(f"{path}:{number}: expected a word followed by numbers") from None
    if not vectors:
        raise UserError(f"--embeddings {path}: no vectors in file")
    return vectors


def _second_line_is_text(path: Path, dim: int) -> bool:
    """word2vec text format: `word x1 ... xdim` in ASCII; anything else is the binary format."""
    with open(path, "rb") as handle:
        handle.readline()
        line = handle.readline()
    try:
        parts = line.decode("utf-8").split()
        [float(part) for part in parts[1:]]
    except (UnicodeDecodeError, ValueError):
        return False
    return len(parts) == dim + 1


def embedding_matrix(vocab: Vocab, lookup, dim: int, seed: int) -> tuple[np.ndarray, float]:
    """A [len(vocab), dim] matrix; words without a vector get small random ones.

    Returns the matrix and the share of the vocabulary's words (not PAD or
    UNK) that had a vector.
    """
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, size=(len(vocab), dim)).astype(np.float32)
    matrix[PAD_ID] = 0.0
    found = 0
    for index, token in enumerate(vocab.itos):
        if index in (PAD_ID, UNK_ID):
            continue
        vector = lookup(token)
        if vector is not None:
            if len(vector) != dim:
                raise UserError(f"--embeddings: vectors have {len(vector)} dimensions; "
                                f"--embedding-dim is {dim}")
            matrix[index] = vector
            found += 1
    return matrix, found / max(1, len(vocab) - 2)
