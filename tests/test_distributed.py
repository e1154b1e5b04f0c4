"""Data parallel on CPU: `make train-lstm NPROC=2` (torchrun, two processes over gloo) against
one process with the same global batch, on tiny data."""

import time

import numpy as np
import pytest

from tests.support import finished_run, read_submission, run_script

# No dropout: the two runs then compute the same function of the same global batches.
# fp32: bf16 autocast (auto on CPUs with native bf16) would add its own rounding to the comparison.
NO_DROPOUT = ("--embeddings random --embedding-dim 8 --hidden-size 8 --max-length 32 --epochs 3 --patience 0 "
              "--dropout 0 --embedding-dropout 0 --lr 0.01 --precision fp32 --eval-batch-size 8 --no-progress")
# What float32 reductions in another order (DDP's averaged gradients, two batches of 8 for one of
# 16) may move the losses by over 3 epochs: measured 6e-8 (one float32 rounding), allowed 1e-5.
TOLERANCE = 1e-5


def curves(client, run_id):
    return {key: [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]
            for key in ("train_loss", "val_loss", "train_acc", "val_acc")}


@pytest.mark.slow
def test_two_processes_train_one_run_like_one_process_with_the_same_global_batch(
        tiny_data_dir, mlflow_store, tmp_path):
    run_script(["make", "--no-print-directory", "train-lstm",
                f"ARGS={NO_DROPOUT} --data-dir {tiny_data_dir} --batch-size 16 --run-name one"], timeout=300)
    started = time.perf_counter()
    result = run_script(["make", "--no-print-directory", "train-lstm", "NPROC=2",
                         f"ARGS={NO_DROPOUT} --data-dir {tiny_data_dir} --batch-size 8 --run-name two"],
                        timeout=300)
    wall = time.perf_counter() - started
    assert "torchrun --standalone --nproc_per_node 2" in result.stdout
    lines = result.stdout.splitlines()
    assert sum(line.startswith("test_acc") for line in lines) == 1  # only the main process reports
    assert lines[-1].startswith("lstm: test_acc") and "FINISHED" in lines[-1]  # and ends with the result

    client, one = finished_run(mlflow_store, "one")
    client, two = finished_run(mlflow_store, "two")  # exactly one run named two, FINISHED
    assert two.info.status == "FINISHED"
    assert len(client.search_runs([two.info.experiment_id])) == 2  # no stray run from the second process
    assert (one.data.tags["processes"], two.data.tags["processes"]) == ("1", "2")
    assert two.data.params["precision_resolved"] == "fp32"

    expected, got = curves(client, one.info.run_id), curves(client, two.info.run_id)
    assert len(got["train_loss"]) == 3 and expected["train_loss"][0] != expected["train_loss"][-1]
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=TOLERANCE, rtol=0, err_msg=key)

    rows = read_submission(client, two.info.run_id, tmp_path / "two")[1:]
    ids = [review_id for review_id, _ in rows]
    assert len(ids) == len(set(ids)) == 60  # every test review exactly once, though 60 = 7 x 8 + 4
    reference = dict(read_submission(client, one.info.run_id, tmp_path / "one")[1:])
    np.testing.assert_allclose([float(p) for _, p in rows], [float(reference[i]) for i in ids], atol=1e-5)
    # Device-hours count both processes: twice the run's wall time, which covers twice the training.
    device_seconds = two.data.metrics["device_hours"] * 3600
    assert 2 * two.data.metrics["train_seconds"] <= device_seconds <= 2 * wall
