"""make bench-predict and the faster scoring it offers the logged model, on all-MiniLM-L6-v2
fine-tuned briefly on real reviews (a real encoder: a tiny random one has no confident outputs)."""

import numpy as np
import pytest

from tests.support import script_main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory, real_data_dir):
    """A finished MiniLM run: 40 real reviews, one epoch at 96 tokens (about 20 s)."""
    import mlflow

    from imdb_sentiment.cli import train
    from imdb_sentiment.families import MINILM

    folder = tmp_path_factory.mktemp("bench-predict")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.setenv("MLFLOW_EXPERIMENT_NAME", "test")
    mlflow.set_tracking_uri(uri)
    outcome = train("bert", ["--model", MINILM.path(), "--data-dir", str(real_data_dir), "--limit", "50",
                             "--epochs", "1", "--max-length", "96", "--lr", "5e-5", "--precision", "fp32",
                             "--no-progress", "--run-name", "minilm"])
    yield uri, outcome.run_id
    mp.undo()


def test_every_way_is_measured_against_fp32_on_the_same_reviews(minilm_run, real_data_dir, monkeypatch):
    uri, run_id = minilm_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    table = script_main("predict_speed")(["--data-dir", str(real_data_dir), "--run-id", run_id, "--reviews", "24",
                                          "--warm-up", "4", "--batch-size", "8", "--max-length", "128",
                                          "--experiment", "test"]).set_index("way")
    assert table.loc["fp32", "max_abs_dp"] == 0 and table.loc["fp32", "speedup"] == 1
    # The same arithmetic in another order or runtime: the same probabilities.
    assert table.loc["fp32-unsorted", "max_abs_dp"] < 1e-5
    assert table.loc["onnx", "max_abs_dp"] < 1e-4
    # Quantised weights move the probabilities, a little.
    for way in ("int8", "onnx-int8"):
        assert 0 < table.loc[way, "max_abs_dp"] < 0.1
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id], "tags.benchmark = 'predict_speed'")
    assert len(runs) == 1 and runs[0].data.tags["measured_run"] == run_id
    assert runs[0].data.metrics["int8_speedup"] == pytest.approx(table.loc["int8", "speedup"])

    # A way this CPU cannot run (bf16 without native bf16) is a row saying why, on any host.
    from imdb_sentiment.encoders import scoring
    monkeypatch.setattr(scoring, "unavailable", lambda way: "not here" if way == "bf16" else None)
    skipped = script_main("predict_speed")(["--data-dir", str(real_data_dir), "--run-id", run_id, "--reviews", "10",
                                            "--warm-up", "2", "--ways", "fp32,bf16", "--experiment", "test"])
    assert skipped.set_index("way").loc["bf16", "note"] == "not here"


def test_the_logged_model_scores_in_int8_when_asked_and_fp32_reproduces_the_run(minilm_run, real_data_dir,
                                                                               monkeypatch):
    from imdb_sentiment import serving, store
    from imdb_sentiment.errors import UserError

    from imdb_sentiment.data import load_test

    uri, run_id = minilm_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    logged = store.logged_predictions(run_id, "test")
    reviews = list(load_test(real_data_dir).set_index("id").loc[logged["id"], "review"])
    fp32 = serving.predict_probabilities(serving.load(f"runs:/{run_id}/model"), reviews)
    with serving.scoring_precision("int8"):
        int8 = serving.predict_probabilities(serving.load(f"runs:/{run_id}/model"), reviews)
    np.testing.assert_allclose(fp32, logged["prob_positive"], atol=1e-5)
    assert 0 < np.max(np.abs(int8 - fp32)) < 0.1
    with serving.scoring_precision("fp16"), pytest.raises(UserError, match="IMDB_PREDICT_PRECISION=fp16: expected"):
        serving.load(f"runs:/{run_id}/model")
