"""End to end: `make train-<family>` on a slice of the real data, as a user runs it; the
finished MLflow run (in a temp store) must hold test_acc, the submission and the model."""


import mlflow
import pytest

from imdb_sentiment.families import FAMILIES
from tests.support import finished_run, read_submission, run_script

# lstm runs in test_end_to_end.py; every other word-vector family of the registry here.
TINY = "--limit 200 --epochs 1 --embeddings random --embedding-dim 16 --max-length 64 --no-progress"
# Each network's own sizes, small: a flag a network does not use is refused.
TINY_SIZES = {"gru": "--hidden-size 16", "cnn": "--num-filters 8", "cnn-lstm": "--hidden-size 16 --num-filters 8",
              "attention-lstm": "--hidden-size 16 --attention-dim 8",
              "capsule-lstm": "--hidden-size 16 --num-capsules 4 --capsule-dim 4",
              "transformer": "--hidden-size 16 --num-heads 2 --feedforward-dim 32"}


@pytest.mark.slow
@pytest.mark.parametrize("family", [name for name, family in FAMILIES.items()
                                    if family.recipe == "embedding" and name != "lstm"])
def test_make_target_trains_and_logs_a_finished_run(family, mlflow_store, real_data_dir, tmp_path):
    run_name = f"e2e-{family}"
    result = run_script(["make", "--no-print-directory", f"train-{family}",
                         f"ARGS={TINY} {TINY_SIZES[family]} --data-dir {real_data_dir} --run-name {run_name}"],
                        timeout=300)
    assert "test_acc" in result.stdout

    client, run = finished_run(mlflow_store, run_name)
    assert run.info.status == "FINISHED"
    assert run.data.tags["family"] == family
    assert run.data.params["model"] == family
    assert run.data.params["limit"] == "200"
    assert 0.0 <= run.data.metrics["test_acc"] <= 1.0
    assert run.data.metrics["trainable_params"] > 0

    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"submission.csv", "predictions.csv", "val_predictions.csv"} <= artifacts
    assert "python_function" in mlflow.models.get_model_info(f"runs:/{run.info.run_id}/model").flavors
    rows = read_submission(client, run.info.run_id, tmp_path)
    assert rows[0] == ["id", "sentiment"]
    assert len(rows) == 1 + 200  # --limit keeps 200 of the 25,000 test reviews
    assert all(0.0 <= float(probability) <= 1.0 for _, probability in rows[1:])


@pytest.mark.slow
def test_bad_family_flag_is_a_one_line_error(mlflow_store, tiny_data_dir):
    result = run_script(["make", "--no-print-directory", "train-transformer",
                         f"ARGS=--data-dir {tiny_data_dir} --hidden-size 30 --num-heads 4"], check=False)
    assert result.returncode != 0
    assert "error: --num-heads: expected a divisor of --hidden-size 30, got 4" in result.stderr
    assert "Traceback" not in result.stderr
