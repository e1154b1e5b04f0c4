"""Ensembles as logged models, and the distill family: a TF-IDF student fitted to a teacher's
probabilities, on a slice of the real data with real MLflow runs."""

import re

import numpy as np
import pandas as pd
import pytest

from tests.support import finished_run, script_main

LIMIT = ["--limit", "200"]


def train(family, data_dir, run_name, *argv):
    from imdb_sentiment.cli import train as train_family

    return train_family(family, ["--data-dir", str(data_dir), "--run-name", run_name, "--no-progress", *LIMIT,
                                 *argv])


def teacher_cache(run) -> str:
    """The teacher cache a student run read: one per precision its teacher scored in (auto: bf16 on a
    CPU with native bf16, else fp32, whose file has no suffix)."""
    precision = run.data.params["teacher_precision_resolved"]
    return f"{run.data.tags['teacher']}{'' if precision == 'fp32' else '.' + precision}.csv"


def logged_test_probabilities(client, run_id, folder):
    path = client.download_artifacts(run_id, "predictions.csv", str(folder))
    return pd.read_csv(path, dtype={"id": str})


@pytest.fixture
def ensemble_run(mlflow_store, real_data_dir):
    """Two TF-IDF members (unigrams; 1-3-grams) stacked: a finished ensemble run."""
    one = train("tfidf", real_data_dir, "unigrams", "--ngram-max", "1").run_id
    three = train("tfidf", real_data_dir, "trigrams").run_id
    return train("ensemble", real_data_dir, "stack", "--runs", f"{one},{three}").run_id


def test_the_ensemble_logs_a_model_that_scores_reviews_as_its_run_did(ensemble_run, mlflow_store, real_data_dir,
                                                                      tmp_path):
    from imdb_sentiment import serving
    from imdb_sentiment.data import load_test

    client, run = finished_run(mlflow_store, "stack")
    logged = logged_test_probabilities(client, ensemble_run, tmp_path)
    reviews = load_test(real_data_dir).set_index("id").loc[logged["id"][:40], "review"]
    model = serving.load(f"runs:/{ensemble_run}/model")
    np.testing.assert_allclose(serving.predict_probabilities(model, list(reviews)),
                               logged["prob_positive"][:40], atol=1e-5)
    # Scoring a review runs both members: the ensemble's cost is theirs added up.
    members = [client.get_run(i).data.metrics["predict_seconds_per_1k"]
               for i in run.data.params["members"].split(",")]
    assert run.data.metrics["predict_seconds_per_1k"] == pytest.approx(sum(members))


def test_a_student_learns_from_the_teacher_on_unlabelled_reviews(ensemble_run, mlflow_store, real_data_dir, tmp_path,
                                                                 capsys):
    from imdb_sentiment import serving
    from imdb_sentiment.data import load_splits

    outcome = train("distill", real_data_dir, "student")  # the best ensemble run is the default teacher
    client, run = finished_run(mlflow_store, "student")
    assert run.data.tags["family"] == "distill" and run.data.tags["teacher"] == ensemble_run
    assert int(run.data.params["fit_reviews"]) == 160 + 400  # the training split and 2 x 200 unlabelled
    assert outcome.test_acc > 0.6 and 0 <= run.data.metrics["val_agreement"] <= 1
    assert "scores 560 reviews (0 cached)" in capsys.readouterr().out

    # The teacher scored the training split and the unlabelled reviews, never validation or test ones.
    splits = load_splits(real_data_dir, 0.2, 42, 200)
    cache = pd.read_csv(tmp_path / "mlflow" / "teacher_predictions" / teacher_cache(run))
    keys = set(cache["key"])
    assert {f"labeled:{i}" for i in splits.train["id"]} <= keys and len(keys) == 560
    assert not keys & {f"labeled:{i}" for i in splits.val["id"]}

    # A second student of the same teacher reads the cache, and a softer one fits other weights.
    train("distill", real_data_dir, "softer", "--temperature", "4", "--alpha", "0")
    assert "scores" not in capsys.readouterr().out
    _, softer = finished_run(mlflow_store, "softer")
    logged, logged_softer = (logged_test_probabilities(client, r.info.run_id, tmp_path / r.info.run_name)
                             for r in (run, softer))
    assert not np.allclose(logged["prob_positive"], logged_softer["prob_positive"])

    # The student is a TF-IDF pyfunc like any other.
    model = serving.load(f"runs:/{run.info.run_id}/model")
    reviews = splits.test.set_index("id").loc[logged["id"][:30], "review"]
    np.testing.assert_allclose(serving.predict_probabilities(model, list(reviews)), logged["prob_positive"][:30],
                               atol=1e-5)

    # make bench-distill: the student (here the better one by validation) against its teacher.
    results = script_main("distill_speed")(["--data-dir", str(real_data_dir), "--reviews", "60",
                                            "--student", run.info.run_id])
    assert results["reviews"] == 60 and results["speedup"] == pytest.approx(
        results["teacher_seconds"] / results["student_seconds"])
    assert "the student scores" in capsys.readouterr().out
    bench = client.search_runs([run.info.experiment_id], "tags.benchmark = 'distill_speed'")
    assert [b.data.tags["teacher"] for b in bench] == [ensemble_run]


def test_soft_targets_of_zero_and_one_fit_what_the_plain_pipeline_fits(real_data_dir):
    from imdb_sentiment import linear
    from imdb_sentiment.data import load_splits

    splits = load_splits(real_data_dir, 0.2, 42, 200)
    reviews, labels = list(splits.train["review"]), splits.train["label"].to_numpy()

    def pipeline():
        return linear.build_pipeline(2, 400, 18, 2, 8.0, 300, 0)

    plain = pipeline().fit(reviews, labels)
    soft = pipeline()
    linear.fit_soft(soft, soft.steps[0][1].transform(reviews), labels.astype(float))
    for step in ("naive_bayes", "classifier"):
        left, right = plain.named_steps[step], soft.named_steps[step]
        np.testing.assert_allclose(getattr(left, "ratio_", None) if step == "naive_bayes" else left.coef_,
                                   getattr(right, "ratio_", None) if step == "naive_bayes" else right.coef_,
                                   rtol=1e-4, atol=1e-5)
    # Halfway targets carry no sentiment: the weights shrink towards zero.
    unsure = pipeline()
    linear.fit_soft(unsure, unsure.steps[0][1].transform(reviews), np.full(len(reviews), 0.5))
    assert np.abs(unsure.named_steps["classifier"].coef_).max() < 0.1 * np.abs(plain.named_steps["classifier"].coef_).max()


def test_a_teacher_that_cannot_teach_is_refused_in_one_line(mlflow_store, real_data_dir):
    from imdb_sentiment.errors import UserError

    with pytest.raises(UserError, match=re.escape("--teacher: no finished ensemble run to default to")):
        train("distill", real_data_dir, "orphan")
    other_split = train("tfidf", real_data_dir, "seven", "--seed", "7").run_id
    with pytest.raises(UserError, match=re.escape(f"teacher {other_split} (tfidf) was validated on other "
                                                  "reviews: seed 7 (not 42)")):
        train("distill", real_data_dir, "mismatch", "--teacher", other_split)
    missing = "0" * 32
    with pytest.raises(UserError, match=f"--teacher {missing}: no such run"):
        train("distill", real_data_dir, "ghost", "--teacher", missing)
    with pytest.raises(UserError, match="--teacher: expected an MLflow run id"):
        train("distill", real_data_dir, "typo", "--teacher", "abc")


def test_self_training_fits_the_pseudo_labels_the_teacher_was_sure_of_then_its_own(ensemble_run, mlflow_store,
                                                                                   real_data_dir, tmp_path):
    from mlflow.tracking import MlflowClient

    from imdb_sentiment import serving
    from imdb_sentiment.data import load_splits
    from imdb_sentiment.recipes.self_train import pseudo_labels

    chosen, targets = pseudo_labels(np.array([0.95, 0.5, 0.05, 0.89, 0.91]), "hard", 0.9)
    assert chosen.tolist() == [0, 2, 4] and targets.tolist() == [1.0, 0.0, 1.0]
    assert pseudo_labels(np.array([0.2, 0.7]), "soft", 0.9)[1].tolist() == [0.2, 0.7]

    outcome = train("self-train", real_data_dir, "self", "--rounds", "2", "--threshold", "0.8")
    client, run = finished_run(mlflow_store, "self")
    assert run.data.tags["family"] == "self-train" and run.data.tags["teacher"] == ensemble_run
    # Round 1 fitted exactly the unlabelled reviews the teacher was >= 0.8 sure of (its cached scores).
    cache = pd.read_csv(tmp_path / "mlflow" / "teacher_predictions" / teacher_cache(run))
    unlabelled = cache[cache["key"].str.startswith("unlabeled:")]["prob_positive"].to_numpy()
    assert len(unlabelled) == 400  # 2 x --limit, and no labelled review: self-training keeps true labels
    rounds = MlflowClient().get_metric_history(run.info.run_id, "pseudo_labelled")
    assert [m.step for m in rounds] == [1, 2]
    assert rounds[0].value == np.sum(np.maximum(unlabelled, 1 - unlabelled) >= 0.8)
    assert outcome.test_acc > 0.6 and int(run.data.metrics["best_epoch"]) in (1, 2)

    splits = load_splits(real_data_dir, 0.2, 42, 200)
    logged = logged_test_probabilities(client, run.info.run_id, tmp_path)
    reviews = splits.test.set_index("id").loc[logged["id"][:30], "review"]
    np.testing.assert_allclose(serving.predict_probabilities(serving.load(f"runs:/{run.info.run_id}/model"),
                                                             list(reviews)), logged["prob_positive"][:30], atol=1e-5)
