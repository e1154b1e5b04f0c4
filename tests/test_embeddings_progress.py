"""word2vec prints a line per epoch while it trains, and the vectors stay those of a silent run."""

import re

import gensim.models
import numpy as np

from imdb_sentiment import embeddings

CORPUS = [["a", "good", "film", "with", "a", "good", "cast"],
          ["a", "bad", "film", "with", "a", "dull", "plot"]] * 20


def test_word2vec_prints_each_epoch_and_keeps_the_vectors(capsys, monkeypatch):
    passed = {}
    real_word2vec = gensim.models.Word2Vec

    def recording_word2vec(**kwargs):  # what train_word2vec asks gensim for
        passed.update(kwargs)
        return real_word2vec(**kwargs)

    monkeypatch.setattr(gensim.models, "Word2Vec", recording_word2vec)
    vectors = embeddings.train_word2vec(CORPUS, dim=8, seed=3, epochs=3, min_count=1)

    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"word2vec: 8 words in the vocabulary, 3 epochs to train \(\d+\.\ds elapsed\)",
                        lines[0])
    epoch_lines = [line for line in lines if "epoch " in line]
    assert len(epoch_lines) == 3
    for number, line in enumerate(epoch_lines, start=1):
        assert re.fullmatch(rf"word2vec: epoch {number}/3 done \(\d+\.\ds elapsed\)", line)

    assert len(passed["callbacks"]) == 1
    silent = real_word2vec(**{**passed, "callbacks": ()}).wv
    assert vectors.index_to_key == silent.index_to_key
    np.testing.assert_array_equal(vectors.vectors, silent.vectors)


def test_word2vec_cache_is_keyed_by_the_unlabelled_file_too(tiny_data_dir):
    """The vectors train on the unlabelled reviews: a changed unlabelled file trains them anew
    instead of reusing stale ones."""
    from imdb_sentiment.config import EmbeddingConfig
    from imdb_sentiment.data import load_splits
    from imdb_sentiment.recipes.word_vectors import encode_splits, word_vectors

    config = EmbeddingConfig(data_dir=str(tiny_data_dir), embedding_dim=8, w2v_epochs=1, min_freq=1)
    splits = load_splits(tiny_data_dir, config.val_fraction, config.seed)
    vocab = encode_splits(config, splits).vocab
    cached = lambda: word_vectors(config, splits, vocab)[1]["word2vec_cached"]  # noqa: E731
    assert cached() is False and cached() is True
    unlabeled = tiny_data_dir / "unlabeledTrainData.tsv"
    unlabeled.write_text(unlabeled.read_text() + '"9999_0"\t"An entirely new review of a film."\n')
    assert cached() is False
