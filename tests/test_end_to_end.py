"""`make train-lstm` and `make train-tfidf` as a user runs them, on a slice of the real data.

Without a data/ folder, the targets first run `make data`, which imports the
local copy of Kaggle's files: the same path a newcomer takes.
"""

import csv

import mlflow
import numpy as np
import pytest

from tests.support import finished_run, read_submission, run_script

LSTM_TINY = "--limit 300 --epochs 1 --max-length 64 --hidden-size 16 --embedding-dim 16 --w2v-epochs 1 --no-progress"


def assert_finished_with_submission(client, run, tmp_path, n_test):
    assert run.info.status == "FINISHED"
    for metric in ("test_acc", "test_auc", "best_epoch", "best_val_acc", "train_seconds", "device_hours",
                   "trainable_params", "val_acc"):
        assert metric in run.data.metrics, metric
    for param in ("git_commit", "git_dirty", "data_sha256", "seed", "version.torch", "device_resolved"):
        assert param in run.data.params, param
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"submission.csv", "predictions.csv", "confusion_matrix.png"} <= artifacts
    rows = read_submission(client, run.info.run_id, tmp_path)
    assert rows[0] == ["id", "sentiment"] and len(rows) == 1 + n_test
    assert all(0.0 <= float(p) <= 1.0 for _, p in rows[1:])
    return artifacts


def assert_predict_gives_the_logged_numbers(client, run, data_dir, tmp_path):
    """`make predict` on the run's own test reviews writes the probabilities the run logged:
    the logged model (and, for a network, its vocabulary and settings) reloads whole."""
    from imdb_sentiment.data import load_test, to_kaggle_tsv

    logged = read_submission(client, run.info.run_id, tmp_path)[1:]
    ids = [review_id for review_id, _ in logged]
    reviews = tmp_path / "reviews.tsv"
    reviews.write_bytes(to_kaggle_tsv(load_test(data_dir).set_index("id").loc[ids].reset_index(), "test"))
    out = tmp_path / "predicted.csv"
    run_script(["make", "--no-print-directory", "predict", f"RUN={run.info.run_id}", f"INPUT={reviews}",
                f"OUT={out}"])
    with open(out, newline="") as handle:
        predicted = list(csv.reader(handle))[1:]
    assert [review_id for review_id, _ in predicted] == ids
    np.testing.assert_allclose([float(p) for _, p in predicted], [float(p) for _, p in logged], atol=2e-6)


@pytest.mark.slow
def test_make_train_lstm(mlflow_store, real_data_dir, tmp_path):
    for name in ("lstm-first", "lstm-cached"):
        result = run_script(["make", "--no-print-directory", "train-lstm", f"ARGS={LSTM_TINY} --run-name {name}"])
    client, run = finished_run(mlflow_store, "lstm-first")
    # The output ends with the result and where the run is, not MLflow's download bars.
    _, cached = finished_run(mlflow_store, "lstm-cached")
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("lstm: test_acc") and cached.info.run_id in last and "FINISHED" in last, last
    assert "Downloading artifacts" not in result.stdout + result.stderr
    assert run.data.tags["family"] == "lstm" and run.data.tags["model"] == "lstm"
    assert run.data.params["embeddings_source"] == "word2vec"
    artifacts = assert_finished_with_submission(client, run, tmp_path, 300)
    assert {"learning_curve.png", "val_predictions.csv"} <= artifacts
    assert "python_function" in mlflow.models.get_model_info(f"runs:/{run.info.run_id}/model").flavors
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert [m.step for m in history] == [1]
    # the second run reads the encoded reviews and word vectors from the cache,
    # and, with the same seed, computes the same numbers
    _, cached = finished_run(mlflow_store, "lstm-cached")
    assert cached.data.params["encoded_cached"] == "True"
    assert cached.data.params["word2vec_cached"] == "True"
    assert cached.data.metrics["test_acc"] == run.data.metrics["test_acc"]
    assert_predict_gives_the_logged_numbers(client, run, real_data_dir, tmp_path)


@pytest.mark.slow
def test_make_train_tfidf(mlflow_store, real_data_dir, tmp_path):
    run_script(["make", "--no-print-directory", "train-tfidf", "ARGS=--limit 1000 --run-name tfidf-e2e"])
    client, run = finished_run(mlflow_store, "tfidf-e2e")
    assert run.data.tags["family"] == "tfidf"
    assert_finished_with_submission(client, run, tmp_path, 1000)
    assert run.data.metrics["test_acc"] > 0.75  # a linear model on 800 reviews already does this well
    assert_predict_gives_the_logged_numbers(client, run, real_data_dir, tmp_path)
    # The default pass limit lets the solver converge rather than stop it short.
    assert int(run.data.params["solver_passes"]) < int(run.data.params["max_iter"])
