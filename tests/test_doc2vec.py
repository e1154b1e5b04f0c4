"""The doc2vec family: PV-DBOW vectors trained on the training split and unlabelled reviews
(with --transductive, the test reviews' text too), a logistic regression on inferred vectors.
Tiny files prove the plumbing (cache, tags, what trains); a slice of the real data shows it
learns and that its logged model, reloaded in a fresh process, scores reviews as the run did."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support import finished_run

TINY = ["--epochs", "3", "--vector-size", "16", "--min-count", "1", "--infer-epochs", "5", "--workers", "1",
        "--no-progress"]


def train(data_dir, run_name, *argv):
    from imdb_sentiment.cli import train as train_family

    return train_family("doc2vec", ["--data-dir", str(data_dir), "--run-name", run_name, *argv])


def logged_predictions(client, run_id, folder) -> pd.DataFrame:
    return pd.read_csv(client.download_artifacts(run_id, "predictions.csv", str(folder)), dtype={"id": str})


def logged_words(client, run_id, folder) -> set:
    """The vocabulary the run's logged model infers with: every token its Doc2Vec trained on."""
    import mlflow.artifacts

    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model", dst_path=str(folder)))
    return set(json.loads((local / "artifacts" / "words.json").read_text()))


def test_a_run_finishes_and_a_second_one_trains_nothing(mlflow_store, tiny_data_dir, tmp_path, capsys):
    train(tiny_data_dir, "first", *TINY)
    first_out = capsys.readouterr().out
    assert "training doc2vec on 108 documents (48 train, 60 unlabeled)" in first_out
    assert re.search(r"doc2vec: epoch 3/3 done \(\d+\.\ds elapsed\)", first_out)
    client, first = finished_run(mlflow_store, "first")
    params, metrics, tags = first.data.params, first.data.metrics, first.data.tags
    assert tags["family"] == "doc2vec" and tags["transductive"] == "false" and tags["model"] == "pv-dbow"
    assert params["doc2vec_cached"] == "False" and params["vector_size"] == "16" and params["window"] == "10"
    assert (params["documents_train"], params["documents_unlabeled"]) == ("48", "60")
    assert "documents_test" not in params
    assert {"test_acc", "test_auc", "val_acc", "train_acc", "best_val_acc"} <= set(metrics)
    artifacts = {a.path for a in client.list_artifacts(first.info.run_id)}
    assert {"predictions.csv", "submission.csv"} <= artifacts
    assert len(logged_predictions(client, first.info.run_id, tmp_path / "first")) == 60

    train(tiny_data_dir, "second", *TINY)
    second_out = capsys.readouterr().out
    assert "training doc2vec" not in second_out and "doc2vec: epoch" not in second_out
    _, second = finished_run(mlflow_store, "second")
    assert second.data.params["doc2vec_cached"] == "True" and second.data.params["documents_unlabeled"] == "60"
    # The cached model, inferred with the same seed: the very same probabilities.
    np.testing.assert_array_equal(logged_predictions(client, second.info.run_id, tmp_path / "second")["prob_positive"],
                                  logged_predictions(client, first.info.run_id, tmp_path / "first")["prob_positive"])

    # A setting that shapes the vectors is part of the key: it trains anew.
    train(tiny_data_dir, "wider", *TINY, "--window", "3")
    assert "training doc2vec" in capsys.readouterr().out


def test_validation_and_test_reviews_never_train_unless_transductive(tiny_data_dir):
    from imdb_sentiment.cli import parse
    from imdb_sentiment.data import load_splits
    from imdb_sentiment.recipes.doc2vec import training_documents

    config = parse("doc2vec", ["--data-dir", str(tiny_data_dir), *TINY])
    splits = load_splits(tiny_data_dir, config.val_fraction, config.seed, config.limit)
    documents, counts = training_documents(config, splits)
    tags = [tag for document in documents for tag in document.tags]
    assert counts == {"train": 48, "unlabeled": 60} and len(tags) == len(set(tags)) == 108
    assert {tag for tag in tags if tag.startswith("train:")} == {f"train:{i}" for i in splits.train["id"]}
    trained_ids = {tag.partition(":")[2] for tag in tags}
    assert not trained_ids & set(splits.val["id"]) and not trained_ids & set(splits.test["id"])

    transductive = parse("doc2vec", ["--data-dir", str(tiny_data_dir), *TINY, "--transductive"])
    documents, counts = training_documents(transductive, splits)
    assert counts == {"train": 48, "unlabeled": 60, "test": 60}
    test_documents = [d for d in documents if d.tags[0].startswith("test:")]
    assert {d.tags[0] for d in test_documents} == {f"test:{i}" for i in splits.test["id"]}
    assert not {d.tags[0].partition(":")[2] for d in documents} & set(splits.val["id"])


def test_a_transductive_run_trains_on_test_text_and_is_its_own_row(mlflow_store, tiny_data_dir, tmp_path):
    from imdb_sentiment import paths, store

    train(tiny_data_dir, "inductive", *TINY)
    train(tiny_data_dir, "transductive", *TINY, "--transductive")
    client, inductive = finished_run(mlflow_store, "inductive")
    _, transductive = finished_run(mlflow_store, "transductive")
    assert transductive.data.tags["family"] == "doc2vec-transductive"
    assert transductive.data.tags["transductive"] == "true"
    # Its own cache entry: the inductive run's model was not reused.
    assert transductive.data.params["doc2vec_cached"] == "False"
    assert transductive.data.params["documents_test"] == "60"
    # Only the test file holds `quoted` (tests/support.py): the test text trained this model alone.
    assert "quoted" in logged_words(client, transductive.info.run_id, tmp_path / "t")
    assert "quoted" not in logged_words(client, inductive.info.run_id, tmp_path / "i")
    # Each run stands for its own family: the transductive one never takes the doc2vec row.
    best = store.best_runs(store.RunStore(paths.default_tracking_uri(), "test").runs())
    assert best["doc2vec"].run_id == inductive.info.run_id
    assert best["doc2vec-transductive"].run_id == transductive.info.run_id


def test_inference_is_gensims_own_and_the_same_whatever_else_is_scored(monkeypatch):
    """The vectors the run and its logged model infer from the stored arrays are those gensim's
    trained model infers with its random state seeded alike, but for the start vector (gensim's
    hashes the words with hash(), which changes per process); a review's vector does not depend
    on the reviews scored before it."""
    import gensim.models.doc2vec
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument

    from imdb_sentiment.paragraph_vectors import Doc2VecState, document_words, start_vector
    from tests.support import NEGATIVE, POSITIVE

    reviews = POSITIVE + NEGATIVE + ["", "Zyzzyva: nothing the model knows."]
    documents = [TaggedDocument(document_words(r, 2), [str(i)]) for i, r in enumerate((POSITIVE + NEGATIVE) * 5)]
    model = Doc2Vec(documents, dm=0, dbow_words=1, vector_size=12, window=3, min_count=1, negative=5, sample=1e-3,
                    epochs=5, seed=1, workers=1)
    settings = {"vector_size": 12, "negative": 5, "sample": 1e-3, "ngrams": 2, "infer_epochs": 7, "seed": 3}
    infer = Doc2VecState.from_model(model, settings).inferrer()
    vectors = infer(reviews)
    monkeypatch.setattr(gensim.models.doc2vec, "pseudorandom_weak_vector",
                        lambda size, seed_string: start_vector(seed_string.split(" "), size, 3))
    for review, vector in zip(reviews, vectors):
        model.random.seed(3)
        np.testing.assert_array_equal(model.infer_vector(document_words(review, 2), epochs=7), vector)
    np.testing.assert_array_equal(infer(reviews[::-1])[::-1], vectors)
    np.testing.assert_array_equal(infer(reviews[2:3]), vectors[2:3])
    assert np.abs(vectors[0] - start_vector(document_words(reviews[0], 2), 12, 3)).max() > 1e-3, "it trained"
    assert "good_film" not in document_words("A good film", 1) and "good_film" in document_words("A good film", 2)


@pytest.mark.parametrize("argv, message", [
    (["--no-dbow-words", "--window", "5"], "--window: applies to --dbow-words True only"),
    (["--sample", "1.5"], "--sample: expected a number in [0, 1)"),
    (["--infer-epochs", "0"], "--infer-epochs: expected an integer >= 1"),
])
def test_a_flag_the_run_does_not_use_or_a_bad_value_is_refused(argv, message):
    from imdb_sentiment.cli import parse
    from imdb_sentiment.errors import UserError

    with pytest.raises(UserError, match=re.escape(message)):
        parse("doc2vec", argv)


def test_ngrams_takes_one_or_two():
    from imdb_sentiment.cli import parse
    from imdb_sentiment.errors import UserError

    with pytest.raises(UserError, match=re.escape("argument --ngrams: invalid choice: 3 (choose from 1, 2)")):
        parse("doc2vec", ["--ngrams", "3"])


# --- on real reviews --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_run(real_data_dir, tmp_path_factory):
    """A default doc2vec run on --limit 400 (320 training, 80 validation, 400 test and 800
    unlabelled reviews) in a store of its own; its data cache in a folder of its own too."""
    import mlflow

    folder = tmp_path_factory.mktemp("doc2vec-real")
    data_dir = folder / "data"
    data_dir.mkdir()
    for path in real_data_dir.iterdir():
        if path.is_file():
            (data_dir / path.name).symlink_to(path)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_EXPERIMENT_NAME", "test")
        mlflow.set_tracking_uri(uri)
        outcome = train(data_dir, "real", "--limit", "400", "--no-progress")
    client, run = finished_run(uri, "real")
    return uri, data_dir, outcome, client, run, folder


@pytest.mark.slow
def test_doc2vec_learns_on_real_reviews(real_run):
    _, _, outcome, _, run, _ = real_run
    # Measured: test accuracy 0.80 (validation 0.79) on this slice; chance is 0.5.
    assert outcome.test_acc > 0.72 and run.data.metrics["val_acc"] > 0.68
    assert run.data.params["documents_unlabeled"] == "800" and run.data.params["documents_train"] == "320"


FRESH = r"""
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
reviews = json.load(open(sys.argv[2]))
print("RESULT " + json.dumps(model.predict(pd.DataFrame({"review": reviews}))["probability"].tolist()))
"""


@pytest.mark.slow
def test_the_logged_model_in_a_fresh_process_gives_the_runs_test_probabilities(real_run):
    from imdb_sentiment.data import load_test

    uri, data_dir, _, client, run, folder = real_run
    logged = logged_predictions(client, run.info.run_id, folder / "logged")
    reviews = load_test(data_dir).set_index("id").loc[logged["id"], "review"]
    (folder / "reviews.json").write_text(json.dumps(list(reviews)))
    done = subprocess.run([sys.executable, "-c", FRESH, f"runs:/{run.info.run_id}/model",
                           str(folder / "reviews.json")], cwd=folder, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "MLFLOW_TRACKING_URI": uri})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    # The same arrays, seed, epochs and float64 classifier: equal up to the CSV's 6 decimals (5e-7).
    np.testing.assert_allclose(json.loads(lines[0][len("RESULT "):]), logged["prob_positive"], atol=1e-6, rtol=0)
