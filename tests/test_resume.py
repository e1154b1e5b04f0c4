"""Checkpoints and --resume through the real run skeleton (train/lstm.py's run_family, in
process, tiny data), and the non-finite-loss guard as a script reports it."""

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment import runs
from imdb_sentiment.errors import UserError, run_main
from imdb_sentiment.families import FAMILIES, parse, train
from tests.support import finished_run

# Dropout on: the resumed epoch must also draw the dropout masks the uninterrupted one drew.
TINY = ["--embeddings", "random", "--embedding-dim", "8", "--hidden-size", "8", "--max-length", "32",
        "--epochs", "2", "--patience", "0", "--no-progress", "--dropout", "0.3", "--batch-size", "16"]


def lstm(data_dir, *extra):
    return parse("lstm", ["--data-dir", str(data_dir), *TINY, *extra])


def stop_after_first_epoch(epoch, metrics):
    if epoch == 1:
        raise KeyboardInterrupt  # as Ctrl-C would, right after epoch 1 was logged and saved


def logged_predictions(client, run_id, tmp_path) -> pd.DataFrame:
    return pd.read_csv(client.download_artifacts(run_id, "predictions.csv", str(tmp_path / run_id)))


def test_a_run_stopped_after_epoch_one_resumes_in_the_same_run_to_the_same_predictions(
        tiny_data_dir, mlflow_store, tmp_path):
    whole = runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--run-name", "whole", "--keep-checkpoints"))
    assert (runs.checkpoint_dir(whole.run_id) / "last" / "trained_weights.pt").is_file()  # kept, as asked

    with pytest.raises(KeyboardInterrupt) as stopped:
        runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--run-name", "stopped"),
                        on_epoch=stop_after_first_epoch)
    client, run = finished_run(mlflow_store, "stopped")
    run_id = run.info.run_id
    assert run.info.status == "KILLED" and stopped.value.killed_runs[0][0] == run_id
    folder = runs.checkpoint_dir(run_id)
    assert (folder / "last").is_dir() and folder.parent.parent == tmp_path / "mlflow"

    with pytest.raises(UserError, match="--lr 0.002 \\(now 0.001\\)"):
        runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--resume", run_id, "--lr", "0.001"))
    resumed = runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--resume", run_id))

    assert resumed.run_id == run_id and not folder.exists()  # the same run; checkpoints gone once finished
    client, run = finished_run(mlflow_store, "stopped")
    assert run.info.status == "FINISHED" and run.data.tags["resumed"] == "True"
    assert [m.step for m in client.get_metric_history(run_id, "val_acc")] == [1, 2]
    assert len(resumed.history) == 2
    assert resumed.test_acc == whole.test_acc
    expected = logged_predictions(client, whole.run_id, tmp_path)
    got = logged_predictions(client, run_id, tmp_path)
    np.testing.assert_array_equal(got["prob_positive"].to_numpy(), expected["prob_positive"].to_numpy())
    for old, new in zip(whole.history, resumed.history):
        assert {k: v for k, v in old.items() if "seconds" not in k and k != "step_ms"} == \
            {k: v for k, v in new.items() if "seconds" not in k and k != "step_ms"}

    with pytest.raises(UserError, match="finished"):
        runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--resume", run_id))


def test_a_nan_loss_fails_the_run_with_one_line(tiny_data_dir, mlflow_store, monkeypatch, capsys):
    from imdb_sentiment.recipes import word_vectors

    original, calls = word_vectors.forward_batch, []

    def poisoned(model, batch):  # the third training batch's logits become NaN
        logits = original(model, batch)
        if model.training:
            calls.append(1)
            if len(calls) == 3:
                return logits * float("nan")
        return logits

    monkeypatch.setattr(word_vectors, "forward_batch", poisoned)
    with pytest.raises(SystemExit) as exited:
        run_main(lambda argv: train("lstm", argv),
                 ["--data-dir", str(tiny_data_dir), *TINY, "--batch-size", "8", "--run-name", "nan"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.strip().splitlines()[-1]]
    assert err.strip().splitlines()[-1].startswith("error: training loss became nan at epoch 1, step 3")
    assert "Traceback" not in err
    client, run = finished_run(mlflow_store, "nan")
    assert run.info.status == "FAILED"
    assert not runs.checkpoint_dir(run.info.run_id).exists()  # nothing to resume: the same loss would come
