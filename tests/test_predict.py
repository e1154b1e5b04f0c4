"""models/predict.py: what a user's mistake gets (one line, nothing written).
That every kind of logged model, loaded by run id or registered name, predicts
what its run computed is checked where the runs are made:
tests/test_served_runs.py."""

import pytest

from imdb_sentiment.errors import UserError

from tests.support import PYTHON, run_script, script_main


def predict(*argv):
    return script_main("predict")(list(argv))


@pytest.fixture
def reviews(tmp_path):
    path = tmp_path / "reviews.txt"
    path.write_text("A wonderful film.\nA dull mess.\n")
    return path


def failed_run_id() -> str:
    from imdb_sentiment import tracking
    try:
        with tracking.start_run("broken", {"family": "lstm"}) as run:
            run_id = run.info.run_id
            raise RuntimeError("training crashed")
    except RuntimeError:
        return run_id


def test_an_unknown_or_unfinished_run_is_named(mlflow_store, reviews, tmp_path):
    out = tmp_path / "out.csv"
    with pytest.raises(UserError, match="^--run-id 0123abcd: no such run in the MLflow store$"):
        predict("--run-id", "0123abcd", "--input", str(reviews), "--out", str(out))
    run_id = failed_run_id()
    with pytest.raises(UserError, match=f"^--run-id {run_id}: the run is FAILED; only a finished run"):
        predict("--run-id", run_id, "--input", str(reviews), "--out", str(out))
    assert not out.exists()


@pytest.mark.parametrize("name, content, message", [
    ("reviews.csv", "id,review\n", r"reviews.csv: expected a .txt file \(one review a line\) or a .tsv"),
    ("gap.txt", "good\n\nbad\n", r"gap.txt:2: empty line; expected one review a line"),
    ("empty.txt", "", r"empty.txt: no reviews"),
    ("bad.tsv", "id\treview\n\"1_10\"\n", r"bad.tsv:2: missing column"),
])
def test_bad_input_files_name_the_file_and_line(mlflow_store, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        predict("--run-id", "0123abcd", "--input", str(path), "--out", str(tmp_path / "out.csv"))


@pytest.mark.slow
def test_an_existing_output_is_never_overwritten(tmp_path, reviews):
    out = tmp_path / "kept.csv"
    out.write_text("precious\n")
    result = run_script([PYTHON, "models/predict.py", "--run-id", "0123abcd", "--input", str(reviews),
                         "--out", str(out)], check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: --out {out}: the file exists; name a new file "
                                     "(nothing is overwritten)")
    assert out.read_text() == "precious\n"


@pytest.mark.slow
def test_make_predict_without_its_variables_prints_usage():
    result = run_script(["make", "--no-print-directory", "predict"], check=False)
    assert result.returncode == 2 and "usage: make predict RUN=<run id> (or MODEL=" in result.stderr


@pytest.mark.parametrize("argv", [[], ["--run-id", "0123abcd", "--model", "models:/imdb-lstm@champion"]])
def test_the_model_is_named_by_one_of_run_id_or_model(argv, reviews, tmp_path):
    with pytest.raises(UserError, match="^name the model by one of --run-id ID or --model URI"):
        predict(*argv, "--input", str(reviews), "--out", str(tmp_path / "out.csv"))


def test_a_run_without_a_review_model_is_named(mlflow_store, reviews, tmp_path):
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    from imdb_sentiment import tracking
    with tracking.start_run("no-model", {"family": "lstm"}) as bare:
        pass
    with tracking.start_run("other-model", {"family": "lstm"}) as other:
        mlflow.sklearn.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name="model")
    out = tmp_path / "out.csv"
    with pytest.raises(UserError, match=f"^--run-id {bare.info.run_id}: the run logged no model 'model' to "
                                        r"predict with \(trained with --no-save-model\?\)$"):
        predict("--run-id", bare.info.run_id, "--input", str(reviews), "--out", str(out))
    with pytest.raises(UserError, match=f"^--model runs:/{other.info.run_id}/model: the run logged a model of "
                                        "another kind"):
        predict("--model", f"runs:/{other.info.run_id}/model", "--input", str(reviews), "--out", str(out))
    with pytest.raises(UserError, match="^--model models:/nobody@champion: no registered model 'nobody' "
                                        r"\(registered: none\)$"):
        predict("--model", "models:/nobody@champion", "--input", str(reviews), "--out", str(out))
    assert not out.exists()
