"""Cleaning, vocabulary, truncation, the encoded-data cache, word-vector files."""

import numpy as np
import pytest

from imdb_sentiment import data, embeddings, text
from imdb_sentiment.errors import UserError


def test_cleaning_strips_html_lowercases_and_keeps_contractions():
    tokens = text.review_to_tokens("I <i>LOVED</i> it!<br /><br />Don't miss &amp; enjoy?")
    assert tokens == ["i", "loved", "it", "!", "don't", "miss", "enjoy", "?"]


def test_cleaning_matches_beautifulsoup_on_real_reviews(real_data_dir):
    from bs4 import BeautifulSoup

    reviews = data.load_kaggle(real_data_dir, "labeled").rows["review"][:300]
    for review in reviews:
        ours = text.review_to_tokens(review)
        soup = text._TOKEN.findall(BeautifulSoup(review, "html.parser").get_text(" ").lower())
        assert ours == soup


def test_vocab_pad_and_unk_are_distinct_and_min_freq_applies():
    vocab = text.Vocab.build([["good", "good", "bad"], ["good", "fine", "fine"]], min_freq=2)
    assert vocab.itos[:2] == [text.PAD, text.UNK] and text.PAD_ID != text.UNK_ID
    assert vocab.itos[2:] == ["good", "fine"]  # "bad" seen once
    assert vocab.encode(["good", "bad", "unseen"]).tolist() == [2, text.UNK_ID, text.UNK_ID]
    assert text.Vocab.from_json(vocab.to_json()).itos == vocab.itos


def test_truncation_head_and_head_tail():
    ids = np.arange(100)
    assert text.truncate(ids, 8, "head").tolist() == list(range(8))
    assert text.truncate(ids, 8, "head_tail").tolist() == [0, 1, 94, 95, 96, 97, 98, 99]
    assert text.truncate(ids[:5], 8, "head_tail").tolist() == [0, 1, 2, 3, 4]


def test_sequences_cache_round_trip(tmp_path):
    vocab = text.Vocab.build([["a", "b"]], min_freq=1)
    sequences = {"train": [np.array([2, 3], np.int32), np.array([3], np.int32)], "test": []}
    path = tmp_path / "cache.npz"
    text.save_sequences(path, sequences, vocab)
    loaded, loaded_vocab = text.load_sequences(path)
    assert [s.tolist() for s in loaded["train"]] == [[2, 3], [3]]
    assert loaded["test"] == [] and loaded_vocab.itos == vocab.itos


def test_word2vec_is_repeatable_with_a_seed():
    corpus = [["good", "movie", "great", "film"], ["bad", "movie", "awful", "film"]] * 50
    first = embeddings.train_word2vec(corpus, dim=8, seed=3, min_count=1)
    second = embeddings.train_word2vec(corpus, dim=8, seed=3, min_count=1)
    assert np.array_equal(first["good"], second["good"])


@pytest.mark.parametrize("layout", ["glove", "word2vec_text", "word2vec_binary"])
def test_vectors_files(tmp_path, layout):
    from gensim.models import KeyedVectors

    words = {"good": [0.5, 1.0, -1.0], "bad": [-0.5, 0.0, 2.0]}
    path = tmp_path / "vectors.bin"
    if layout == "glove":
        path = tmp_path / "vectors.txt"
        path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in words.items()))
    else:
        kv = KeyedVectors(3)
        kv.add_vectors(list(words), np.array(list(words.values()), dtype=np.float32))
        kv.save_word2vec_format(str(path), binary=layout == "word2vec_binary")
    table = embeddings.read_vectors_file(path)
    assert np.allclose(table["bad"], words["bad"])
    vocab = text.Vocab.build([["good", "bad", "other"]], min_freq=1)
    matrix, coverage = embeddings.embedding_matrix(vocab, table.get, 3, seed=0)
    assert np.allclose(matrix[vocab.stoi["good"]], words["good"])
    assert np.all(matrix[text.PAD_ID] == 0) and coverage == pytest.approx(2 / 3)


def test_vectors_file_with_ragged_line(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("good 1 2 3\nbad 1 2\n")
    with pytest.raises(UserError, match=r"v.txt:2: 2 numbers, expected 3"):
        embeddings.read_vectors_file(path)


def test_word2vec_cache_is_one_file_and_round_trips(tmp_path):
    corpus = [["good", "movie"], ["bad", "movie"]] * 20
    path = tmp_path / "cache" / "w2v.npz"
    trained, cached = embeddings.load_or_train_word2vec(path, lambda: corpus, dim=4, seed=1, min_count=1)
    again, cached_again = embeddings.load_or_train_word2vec(path, lambda: 1 / 0, dim=4, seed=1, min_count=1)
    assert (cached, cached_again) == (False, True)
    assert np.array_equal(trained["good"], again["good"]) and set(again) == {"good", "bad", "movie"}
    assert [p.name for p in path.parent.iterdir()] == ["w2v.npz"]  # no side files left behind
