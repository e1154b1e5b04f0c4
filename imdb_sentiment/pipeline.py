"""The recipe every embedding family follows; a train/ script is one call to it.

    config = parse_config(EmbeddingConfig, argv, defaults={"model": "lstm", ...})
    run_embedding_family(config, family="lstm")

Steps: read and split the data; clean, tokenise and encode (cached on disk);
word vectors (word2vec cached, a file, or random); build the model from the
registry; train with the shared loop; predict the test reviews; log it all
to one MLflow run.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader

from . import data, device as devices, embeddings, paths, text, tracking
from .batching import BucketBatchSampler, SequenceDataset, pad_batch
from .config import NetworkConfig, option, require
from .models import MODELS, build_model, count_trainable, forward_batch, make_embedding
from .reporting import report_test
from .training import FitSettings, fit, predict


@dataclass
class EmbeddingConfig(NetworkConfig):
    """Settings of the word-embedding families (each script sets its own defaults)."""
    model: str = option("lstm", "model architecture: one of the MODELS registry")
    lr: float = option(2e-3, "peak learning rate (AdamW)")
    min_freq: int = option(2, "words seen fewer times in the training split become <unk>")
    max_vocab: int | None = option(None, "keep at most this many words")
    embeddings: str = option("word2vec", "word2vec (trained here on train + unlabelled reviews, cached), "
                                         "random, or the path of a GloVe / word2vec file")
    embedding_dim: int = option(200, "word-vector size (must match a vectors file)")
    freeze_embeddings: bool = option(False, "keep the word vectors fixed while training")
    w2v_epochs: int = option(5, "word2vec training epochs")
    w2v_window: int = option(5, "word2vec context window")
    hidden_size: int = option(128, "recurrent hidden size per direction / model width")
    num_layers: int = option(1, "stacked recurrent or encoder layers")
    dropout: float = option(0.3, "dropout before the classifier and between layers")
    embedding_dropout: float = option(0.2, "dropout on the word vectors")
    num_filters: int = option(100, "cnn, cnn-lstm: convolution filters per width")
    filter_sizes: str = option("3,4,5", "cnn: comma-separated convolution widths; cnn-lstm uses the first")
    pool_size: int = option(2, "cnn-lstm: max-pool width along time between convolution and LSTM (1: none)")
    attention_dim: int = option(128, "attention-lstm: size of the additive attention's hidden layer")
    num_capsules: int = option(10, "capsule-lstm: output capsules")
    capsule_dim: int = option(16, "capsule-lstm: size of each output capsule")
    routing_iterations: int = option(3, "capsule-lstm: dynamic routing iterations")
    num_heads: int = option(4, "transformer: attention heads (must divide --hidden-size, the model width)")
    feedforward_dim: int = option(512, "transformer: feed-forward size in each encoder layer")

    @property
    def filter_size_list(self) -> list[int]:
        return [int(part) for part in self.filter_sizes.split(",")]

    def __post_init__(self):
        super().__post_init__()
        require(self.model in MODELS, "model", f"one of {sorted(MODELS)}", self.model)
        require(self.lr > 0, "lr", "a positive number", self.lr)
        require(0.0 <= self.dropout < 1.0, "dropout", "a number in [0, 1)", self.dropout)
        require(0.0 <= self.embedding_dropout < 1.0, "embedding_dropout", "a number in [0, 1)",
                self.embedding_dropout)
        require(self.min_freq >= 1, "min_freq", "an integer >= 1", self.min_freq)
        require(self.embedding_dim >= 2, "embedding_dim", "an integer >= 2", self.embedding_dim)
        require(self.hidden_size >= 1, "hidden_size", "an integer >= 1", self.hidden_size)
        require(self.num_layers >= 1, "num_layers", "an integer >= 1", self.num_layers)
        require(self.num_filters >= 1, "num_filters", "an integer >= 1", self.num_filters)
        parts = self.filter_sizes.split(",")
        require(all(part.strip().isdigit() and int(part) >= 1 for part in parts), "filter_sizes",
                "comma-separated integers >= 1 such as 3,4,5", self.filter_sizes)
        require(self.pool_size >= 1, "pool_size", "an integer >= 1", self.pool_size)
        require(self.attention_dim >= 1, "attention_dim", "an integer >= 1", self.attention_dim)
        require(self.num_capsules >= 1, "num_capsules", "an integer >= 1", self.num_capsules)
        require(self.capsule_dim >= 1, "capsule_dim", "an integer >= 1", self.capsule_dim)
        require(self.routing_iterations >= 1, "routing_iterations", "an integer >= 1", self.routing_iterations)
        require(self.num_heads >= 1, "num_heads", "an integer >= 1", self.num_heads)
        if self.model == "transformer":
            require(self.hidden_size % self.num_heads == 0, "num_heads",
                    f"a divisor of --hidden-size {self.hidden_size}", self.num_heads)
        require(self.feedforward_dim >= 1, "feedforward_dim", "an integer >= 1", self.feedforward_dim)
        if self.embeddings not in ("word2vec", "random"):
            require(Path(self.embeddings).is_file(), "embeddings",
                    "word2vec, random, or an existing vectors file", self.embeddings)


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
        key = text.cache_key(kind="word2vec", data=splits.sha256, limit=config.limit, seed=config.seed,
                             val_fraction=config.val_fraction, dim=config.embedding_dim,
                             epochs=config.w2v_epochs, window=config.w2v_window)
        path = paths.cache_dir(Path(config.data_dir)) / f"word2vec-{key}.npz"

        def corpus():
            unlabeled = data.load_kaggle(config.data_dir, "unlabeled").rows
            if unlabeled_limit:
                unlabeled = unlabeled.iloc[:unlabeled_limit]
            reviews = list(splits.train["review"]) + list(unlabeled["review"])
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


def make_loader(sequences, labels, max_length: int, truncation: str, batch_size: int,
                shuffle: bool, seed: int) -> DataLoader:
    truncated = [text.truncate(seq, max_length, truncation) for seq in sequences]
    dataset = SequenceDataset(truncated, labels)
    sampler = BucketBatchSampler(dataset.lengths(), batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=pad_batch)


def fit_logged(model, train_loader, val_loader, settings: FitSettings, device, forward,
               compute_loss=None, on_epoch: Callable | None = None):
    """The shared loop with each epoch's metrics logged to the active run before
    on_epoch (a search trial's report / prune) sees them."""

    def epoch_done(epoch, metrics):
        tracking.log_epoch(epoch, metrics)
        if on_epoch:
            on_epoch(epoch, metrics)

    return fit(model, train_loader, val_loader, settings, device, forward=forward,
               compute_loss=compute_loss, on_epoch=epoch_done)


@dataclass
class Outcome:
    run_id: str
    best_val_acc: float
    test_acc: float
    history: list


def run_embedding_family(config: EmbeddingConfig, family: str, on_epoch: Callable | None = None,
                         parent_run_id: str | None = None, extra_tags: dict | None = None) -> Outcome:
    """Train and test one embedding-family model, logged as one MLflow run."""
    started = time.perf_counter()
    devices.set_seed(config.seed)
    devices.use_all_cores()
    device = devices.detect_device(config.device)
    splits = data.load_splits(config.data_dir, config.val_fraction, config.seed, config.limit)
    print(f"{family}: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test reviews "
          f"on {device}", flush=True)
    tags = {"family": family, "model": config.model, "device": device.type, **(extra_tags or {})}
    params = tracking.run_params(config, {"data_sha256": splits.sha256, "device_resolved": str(device)})
    run_name = config.run_name or f"{family}-{time.strftime('%Y%m%d-%H%M%S')}"
    with tracking.start_run(run_name, tags, params, experiment=config.experiment,
                            parent_run_id=parent_run_id) as run:
        encoded = encode_splits(config, splits)
        matrix, vector_info = word_vectors(config, splits, encoded.vocab)
        tracking.log_params({"vocab_size": len(encoded.vocab), "encoded_cached": encoded.cache_hit,
                             **vector_info})
        devices.set_seed(config.seed)  # the same initial weights whatever ran before
        embedding = make_embedding(matrix, len(encoded.vocab), config.embedding_dim, config.freeze_embeddings)
        model = build_model(config.model, config, embedding)

        def loader(name, shuffle, batch_size):
            return make_loader(encoded.sequences[name], getattr(splits, name)["label"].to_numpy(),
                               config.max_length, config.truncation, batch_size, shuffle, config.seed)

        result = fit_logged(model, loader("train", True, config.batch_size),
                            loader("val", False, config.eval_batch_size), FitSettings.from_config(config),
                            device, forward_batch, on_epoch=on_epoch)
        test_probs, _ = predict(model, loader("test", False, config.eval_batch_size), forward_batch, device)
        final = report_test(splits.test, test_probs, result.history, result.best_epoch, result.best_val_acc,
                            result.train_seconds, started, count_trainable(model))
        tracking.log_text(encoded.vocab.to_json(), "vocab.json")
        tracking.log_pytorch_model(model)
        return Outcome(run.info.run_id, result.best_val_acc, final["test_acc"], result.history)
