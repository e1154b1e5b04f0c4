"""Checkpoints and --resume through the real run skeleton (train/lstm.py's run_family, in
process, tiny data), and the non-finite-loss guard as a script reports it."""

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment import runs
from imdb_sentiment.errors import UserError, run_main
from imdb_sentiment.cli import parse, train
from imdb_sentiment.families import FAMILIES
from tests.support import finished_run

# Dropout on: the resumed epoch must also draw the dropout masks the uninterrupted one drew.
TINY = ["--embeddings", "random", "--embedding-dim", "8", "--hidden-size", "8", "--max-length", "32",
        "--epochs", "2", "--patience", "0", "--no-progress", "--dropout", "0.3", "--batch-size", "16"]


def lstm(data_dir, *extra):
    return parse("lstm", ["--data-dir", str(data_dir), *TINY, *extra])


def stop_after_first_epoch(epoch, metrics, last):
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


# --- runs that die: kill -9, a damaged checkpoint, a full disk ------------------------------

def test_a_run_killed_while_replacing_its_checkpoint_resumes_from_the_complete_one(tiny_data_dir, mlflow_store,
                                                                                   tmp_path):
    """kill -9 between the renames of a checkpoint write leaves `previous` (complete) and a
    half-written `last.partial`, and no `last`: --resume goes on from `previous`."""
    whole = runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--run-name", "whole"))
    with pytest.raises(KeyboardInterrupt):
        runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--run-name", "torn"), on_epoch=stop_after_first_epoch)
    client, run = finished_run(mlflow_store, "torn")
    folder = runs.checkpoint_dir(run.info.run_id)
    (folder / "last").rename(folder / "previous")
    (folder / "last.partial").mkdir()
    (folder / "last.partial" / "trained_weights.pt").write_bytes(b"half a file")
    resumed = runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--resume", run.info.run_id))
    np.testing.assert_array_equal(logged_predictions(client, resumed.run_id, tmp_path)["prob_positive"],
                                  logged_predictions(client, whole.run_id, tmp_path)["prob_positive"])


def stop_after_epoch_two(epoch, metrics, last):
    if epoch == 2:
        raise KeyboardInterrupt


def test_a_damaged_checkpoint_is_named_and_the_one_before_is_used(tiny_data_dir, mlflow_store, tmp_path, capsys):
    three = ["--epochs", "3"]
    whole = runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--run-name", "whole", *three))
    with pytest.raises(KeyboardInterrupt):
        runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--run-name", "damaged", *three),
                        on_epoch=stop_after_epoch_two)
    client, run = finished_run(mlflow_store, "damaged")
    folder = runs.checkpoint_dir(run.info.run_id)
    assert (folder / "previous").is_dir()  # epoch 1's, kept beside epoch 2's
    weights = folder / "last" / "trained_weights.pt"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    resumed = runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--resume", run.info.run_id, *three))
    assert f"checkpoint {folder / 'last'} is damaged" in capsys.readouterr().out
    assert len(resumed.history) == 3  # epoch 2 trained again from epoch 1's checkpoint
    np.testing.assert_array_equal(logged_predictions(client, resumed.run_id, tmp_path)["prob_positive"],
                                  logged_predictions(client, whole.run_id, tmp_path)["prob_positive"])

    with pytest.raises(KeyboardInterrupt):
        runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--run-name", "ruined"),
                        on_epoch=stop_after_first_epoch)
    _, run = finished_run(mlflow_store, "ruined")
    weights = runs.checkpoint_dir(run.info.run_id) / "last" / "trained_weights.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UserError, match=f"the checkpoint {runs.checkpoint_dir(run.info.run_id) / 'last'} is "
                                        "damaged .* and there is none before it"):
        runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--resume", run.info.run_id))


def no_space(path):
    import errno
    return OSError(errno.ENOSPC, "No space left on device", str(path))


def torch_out_of_space(path):
    """What torch.save raises when the disk fills under it."""
    return RuntimeError(f"[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file "
                        f"data/0: file write failed ({path})")


def test_a_full_disk_at_a_checkpoint_fails_the_run_in_one_line_and_keeps_the_one_before(
        tiny_data_dir, mlflow_store, monkeypatch):
    """Simulated: the second checkpoint write meets ENOSPC, as on a full filesystem."""
    from accelerate import Accelerator

    real_save, calls = Accelerator.save_state, []

    def save_state(self, output_dir=None, **kwargs):
        calls.append(output_dir)
        if len(calls) == 2:
            raise torch_out_of_space(output_dir)
        return real_save(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", save_state)
    with pytest.raises(UserError, match=r"cannot write the checkpoint .*last\.partial \(no space left on the device\); "
                                        r"\d+ MB free on the filesystem of .*, a checkpoint needs about"):
        runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--run-name", "full"))
    _, run = finished_run(mlflow_store, "full")
    assert run.info.status == "FAILED"
    folder = runs.checkpoint_dir(run.info.run_id)
    assert (folder / "last" / "trained_weights.pt").is_file() and not (folder / "last.partial").exists()
    monkeypatch.setattr(Accelerator, "save_state", real_save)
    resumed = runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--resume", run.info.run_id))
    assert resumed.run_id == run.info.run_id and len(resumed.history) == 2


def test_a_full_disk_writing_the_model_fails_the_run_and_registers_nothing(tiny_data_dir, mlflow_store,
                                                                           monkeypatch):
    from mlflow.tracking import MlflowClient

    from imdb_sentiment import serving

    def full(*args, **kwargs):
        raise no_space(runs.paths.store_dir() / "artifacts")

    monkeypatch.setattr(serving, "log_embedding_model", full)
    with pytest.raises(UserError, match="no space left on the disk writing the run's artifacts .* MB free"):
        runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--run-name", "no-room", "--register", "imdb-full"))
    _, run = finished_run(mlflow_store, "no-room")
    assert run.info.status == "FAILED"
    assert not MlflowClient(mlflow_store).search_registered_models()


@pytest.mark.slow
def test_kill_9_in_the_middle_of_training_resumes_to_the_uninterrupted_predictions(tiny_data_dir, mlflow_store,
                                                                                  tmp_path):
    import os
    import signal
    import subprocess
    import time

    from mlflow.tracking import MlflowClient

    from tests.support import PYTHON, REPO

    many = ["--epochs", "40"]  # long enough to be killed in the middle
    whole = runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--run-name", "whole", *many))
    process = subprocess.Popen([PYTHON, "train/lstm.py", "--data-dir", str(tiny_data_dir), *TINY, *many,
                                "--run-name", "killed"], cwd=REPO, env=dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client, deadline, folder, killed = MlflowClient(mlflow_store), time.monotonic() + 400, None, False
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if folder is None:
                experiment = client.get_experiment_by_name("test")
                found = client.search_runs([experiment.experiment_id], "attributes.run_name = 'killed'") \
                    if experiment else []
                folder = runs.checkpoint_dir(found[0].info.run_id) if found else None
            if folder is not None and (folder / "last").is_dir():
                os.kill(process.pid, signal.SIGKILL)  # in epoch 2 or writing its checkpoint
                killed = True
                break
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait()
    assert killed, f"the run was not killed in the middle (it exited {process.returncode})"
    run_id = folder.name
    assert client.get_run(run_id).info.status == "RUNNING"  # nothing ended it: the process died
    resumed = runs.run_family(FAMILIES["lstm"], lstm(tiny_data_dir, "--resume", run_id, *many))
    assert client.get_run(run_id).info.status == "FINISHED"
    np.testing.assert_array_equal(logged_predictions(client, resumed.run_id, tmp_path)["prob_positive"],
                                  logged_predictions(client, whole.run_id, tmp_path)["prob_positive"])
