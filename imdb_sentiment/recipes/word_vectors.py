"""The word-vector recipe: every embedding-family network trains this way.

What is special about it: reviews are cleaned, tokenised and encoded with a
vocabulary of the training split (cached on disk); word vectors come from
word2vec trained on the training and unlabelled reviews (cached), a vectors
file, or random; the network is built from the models.MODELS registry and
trains on length-grouped batches truncated to --max-length. The run itself
(data, MLflow, test report) is imdb_sentiment/runs.py's.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import data, device as devices, embeddings, paths, serving, text, tracking
from ..batching import TokenIds, make_loader
from ..config import EmbeddingConfig
from ..models import build_model, forward_batch, make_embedding
from ..runs import Prepared, Trained
from ..training import count_parameters, fit_logged, predict


@dataclass
class Encoded:
    sequences: dict  # split name -> list of id arrays (untruncated)
    vocab: text.Vocab
    cache_hit: bool


def encode_splits(config: EmbeddingConfig, splits: data.Splits) -> Encoded:
    """Token ids of every split, cached by data checksum and the settings that shape them."""
    key = text.cache_key(kind="encoded", data=splits.sha256, limit=config.limit, seed=config.seed,
                         val_fraction=config.val_fraction, min_freq=config.min_freq,
                         max_vocab=config.max_vocab)
    path = paths.cache_dir(Path(config.data_dir)) / f"encoded-{key}.npz"
    if path.exists():
        sequences, vocab = text.load_sequences(path)
        return Encoded(sequences, vocab, True)
    tokens = {name: text.reviews_to_tokens(getattr(splits, name)["review"])
              for name in ("train", "val", "test")}
    vocab = text.Vocab.build(tokens["train"], config.min_freq, config.max_vocab)
    sequences = {name: [vocab.encode(t) for t in token_lists] for name, token_lists in tokens.items()}
    try:
        text.save_sequences(path, sequences, vocab)
    except OSError as error:  # a read-only data dir still trains, just without the cache
        print(f"note: cannot cache encoded data at {path} ({error})")
    return Encoded(sequences, vocab, False)


def word_vectors(config: EmbeddingConfig, splits: data.Splits, vocab: text.Vocab):
    """(matrix [vocab, dim] or None for random init, description for the log)."""
    if config.embeddings == "random":
        return None, {"embeddings_source": "random"}
    if config.embeddings == "word2vec":
        unlabeled_limit = 2 * config.limit if config.limit else None
        # Every file the vectors are trained on: the labelled (splits.sha256) and the unlabelled one.
        key = text.cache_key(kind="word2vec", data=splits.sha256,
                             unlabeled=data.kaggle_sha256(config.data_dir, "unlabeled") if config.w2v_unlabeled
                             else "none",
                             limit=config.limit, seed=config.seed,
                             val_fraction=config.val_fraction, dim=config.embedding_dim,
                             epochs=config.w2v_epochs, window=config.w2v_window,
                             unlabeled_less_copies=True)  # data.unlabelled_reviews
        path = paths.cache_dir(Path(config.data_dir)) / f"word2vec-{key}.npz"

        def corpus():
            reviews = list(splits.train["review"])
            if config.w2v_unlabeled:
                reviews += list(data.unlabelled_reviews(config.data_dir, unlabeled_limit)["review"])
            print(f"training word2vec on {len(reviews)} reviews ...", flush=True)
            return text.reviews_to_tokens(reviews)

        started = time.perf_counter()
        vectors, cached = embeddings.load_or_train_word2vec(
            path, corpus, dim=config.embedding_dim, seed=config.seed, epochs=config.w2v_epochs,
            window=config.w2v_window)
        lookup = vectors.get
        info = {"embeddings_source": "word2vec", "word2vec_cached": cached,
                "word2vec_seconds": round(time.perf_counter() - started, 1)}
    else:
        table = embeddings.read_vectors_file(Path(config.embeddings))
        lookup = table.get
        info = {"embeddings_source": str(config.embeddings)}
    matrix, coverage = embeddings.embedding_matrix(vocab, lookup, config.embedding_dim, config.seed)
    info["embedding_coverage"] = round(coverage, 4)
    return torch.from_numpy(matrix), info


# --precision auto on a CPU with native bf16 (AVX512-BF16, AMX, Arm BF16): bf16, measured faster at the
# same accuracy by bench/precision.py (AMD EPYC with avx512_bf16, 2 cores, 3200 training reviews,
# 3 epochs): BiLSTM 192.3 ms/batch fp32 vs 134.6 bf16 (1.43x), test accuracy 0.7877 vs 0.7900.
CPU_BF16_FASTER = True


def prepare(config: EmbeddingConfig) -> Prepared:
    devices.use_all_cores()
    device = devices.detect_device(config.device)
    # The network built once on a two-word vocabulary, to know before any data loads whether it
    # holds LSTM layers (bf16 without native bf16 cannot run those).
    probe = build_model(config.model, config, make_embedding(None, 2, config.embedding_dim, True))
    return Prepared(device, model=config.model,
                    precision=devices.resolve_precision(config.precision, device, CPU_BF16_FASTER,
                                                        recurrent=devices.has_lstm(probe)))


def train(config: EmbeddingConfig, prepared: Prepared, splits: data.Splits, on_epoch) -> Trained:
    with devices.main_process_first():  # the main process fills the caches, the others read them
        encoded = encode_splits(config, splits)
        matrix, vector_info = word_vectors(config, splits, encoded.vocab)
    if devices.is_main_process() and not prepared.resume:  # a resumed run logged them when it started
        tracking.log_params({"vocab_size": len(encoded.vocab), "encoded_cached": encoded.cache_hit,
                             **vector_info})
    devices.set_seed(config.seed)  # the same initial weights whatever ran before
    embedding = make_embedding(matrix, len(encoded.vocab), config.embedding_dim, config.freeze_embeddings)
    model = build_model(config.model, config, embedding)

    def loader(name, shuffle, batch_size):
        truncated = [text.truncate(ids, config.max_length, config.truncation) for ids in encoded.sequences[name]]
        return make_loader(TokenIds(truncated, getattr(splits, name)["label"].to_numpy()), batch_size, shuffle,
                           config.seed, device=prepared.device)

    result = fit_logged(model, loader("train", True, config.batch_size), loader("val", False, config.eval_batch_size),
                        prepared.fit_settings(config), prepared.device, forward_batch, on_epoch=on_epoch)

    def predict_split(name):
        # fp32, as the logged model serves: the probabilities logged are the ones it reproduces.
        return predict(model, loader(name, False, config.eval_batch_size), forward_batch, prepared.device,
                       all_processes=True)[0]

    def log_model(threshold):
        serving.log_embedding_model(model, config, encoded.vocab, threshold)

    return Trained(result, count_parameters(model)[0], predict_split, log_model)
