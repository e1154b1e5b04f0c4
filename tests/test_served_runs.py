"""Real training runs of every kind of family (imdb_sentiment.cli.train on tiny data and
tiny models), then what their logged pyfunc is for: loaded, it gives the run's logged test
probabilities; registered (--register, make register) it is found by alias; `make predict`
reads it; served over HTTP (make serve) it answers MLflow's JSON formats and refuses bad
requests in one line; `make bench-serve` times the server. The registry also on a real
`mlflow server`. Marked slow: they first train four tiny models (about 30 s on 2 cores)."""

import csv
import json
import logging
import os
import signal
import subprocess
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imdb_sentiment.errors import UserError
from tests.support import (OFFLINE, PYTHON, REPO, TINY_LSTM, build_tiny_models, free_port, run_make,
                           script_main, stop_process_group, wait_for_http, write_kaggle_files)

ENCODER_TINY = ["--epochs", "1", "--max-length", "48", "--batch-size", "8", "--no-progress", "--cpu-threads", "1"]
# kind -> (family script, flags after --data-dir; {model} is the tiny BERT's folder)
KINDS = {
    "embedding": ("lstm", [*TINY_LSTM, "--no-progress"]),
    "encoder": ("bert", ["--model", "{model}", *ENCODER_TINY, "--lr", "0.003"]),
    "adapter": ("bert", ["--model", "{model}", *ENCODER_TINY, "--method", "lora", "--lr", "0.01"]),
    "tfidf": ("tfidf", []),
}


@dataclass
class Store:
    uri: str
    data_dir: Path
    tiny_bert: Path
    run_ids: dict     # kind -> run id
    said: dict        # kind -> warnings and MLflow log lines while it trained


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def train(family: str, argv):
    from imdb_sentiment.cli import train as train_family
    return train_family(family, argv)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    import mlflow

    folder = tmp_path_factory.mktemp("served-runs")
    data_dir = write_kaggle_files(folder / "kaggle")
    tiny_bert = build_tiny_models(folder / "tiny", data_dir)["bert"]
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "served", **OFFLINE}.items():
            patch.setenv(key, value)
        mlflow.set_tracking_uri(uri)
        run_ids, said = {}, {}
        for kind, (family, flags) in KINDS.items():
            lines = _Lines()
            logging.getLogger("mlflow").addHandler(lines)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    outcome = train(family, ["--data-dir", str(data_dir), "--run-name", kind,
                                             *[flag.format(model=tiny_bert) for flag in flags]])
            finally:
                logging.getLogger("mlflow").removeHandler(lines)
            run_ids[kind], said[kind] = outcome.run_id, lines.lines + [str(w.message) for w in caught]
        yield Store(uri, data_dir, tiny_bert, run_ids, said)


def logged_predictions(store: Store, kind: str, tmp_path) -> pd.DataFrame:
    from mlflow.tracking import MlflowClient

    path = MlflowClient(store.uri).download_artifacts(store.run_ids[kind], "predictions.csv", str(tmp_path))
    return pd.read_csv(path, dtype={"id": str})


def held_out_test(store: Store) -> pd.DataFrame:
    from imdb_sentiment.data import load_splits
    return load_splits(store.data_dir).test  # the runs' defaults: seed, val fraction, no limit


# --- 1, 2, 8: every kind's logged model gives the run's numbers; nothing pickled -------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.slow
def test_the_loaded_pyfunc_gives_the_runs_logged_test_probabilities(kind, store, tmp_path):
    from mlflow.tracking import MlflowClient

    from imdb_sentiment import inference, serving

    run_id = store.run_ids[kind]
    logged = logged_predictions(store, kind, tmp_path)
    test = held_out_test(store)
    assert list(logged["id"]) == list(test["id"])
    pyfunc = inference.load_model(f"runs:/{run_id}/model")
    answer = pyfunc.predict(pd.DataFrame({"review": test["review"]}))
    np.testing.assert_allclose(answer["probability"], logged["prob_positive"], atol=1e-5, rtol=0)
    assert np.ptp(answer["probability"]) > 1e-4, "a constant model would hide a broken reload"
    # The label is the validation-optimal threshold's; test_acc stays the one at 0.5.
    metrics = MlflowClient(store.uri).get_run(run_id).data.metrics
    assert list(answer["label"]) == [int(p >= metrics["best_threshold"]) for p in answer["probability"]]
    assert metrics["test_acc"] == pytest.approx(np.mean((logged["prob_positive"] >= 0.5) == test["label"]))
    assert serving.predict_probabilities(pyfunc, ["A fine film."]).shape == (1,)


def model_files(store: Store, kind: str) -> tuple[dict, set]:
    """(settings.json, names of every file) of the kind's logged model."""
    import mlflow.artifacts

    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{store.run_ids[kind]}/model",
                                                     tracking_uri=store.uri))
    settings = json.loads(next(local.rglob("settings.json")).read_text())
    return settings, {p.name for p in local.rglob("*") if p.is_file()}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.slow
def test_each_kind_logs_a_pyfunc_and_no_old_format(kind, store):
    from mlflow.tracking import MlflowClient

    from imdb_sentiment import model_registry, serving

    client = MlflowClient(store.uri)
    run_id = store.run_ids[kind]
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert artifacts == {"submission.csv", "predictions.csv", "val_predictions.csv", "learning_curve.png",
                         "confusion_matrix.png"}, "vocab.json, a pytorch/sklearn model or a model folder"
    import mlflow
    mlflow.set_tracking_uri(store.uri)
    model = model_registry.logged_model(run_id)
    assert model.model_type == serving.MODEL_TYPE
    settings, files = model_files(store, kind)
    assert settings["kind"] == {"adapter": "encoder"}.get(kind, kind)
    assert not {f for f in files if f.endswith((".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib"))}
    said = [line for line in store.said[kind] if "pickle" in line.lower()]
    assert not said, said  # item 8: no "pickle" warning while training and logging


@pytest.mark.slow
def test_encoders_log_the_token_budget_and_adapters_their_base(store):
    from mlflow.tracking import MlflowClient

    for kind in ("encoder", "adapter"):
        settings, files = model_files(store, kind)
        params = MlflowClient(store.uri).get_run(store.run_ids[kind]).data.params
        assert settings["max_length"] == int(params["tokens_per_review"]) == 48
        assert settings["truncation"] == params["truncation"]
        assert ("adapter_config.json" in files) == (kind == "adapter")
    adapter, _ = model_files(store, "adapter")
    assert adapter["base_model"] == str(store.tiny_bert.resolve()) and adapter["method"] == "lora"


@pytest.mark.slow
def test_no_save_model_logs_no_model_and_predict_says_so(store, monkeypatch, tmp_path):
    from imdb_sentiment import model_registry

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "served")
    outcome = train("bert", ["--data-dir", str(store.data_dir), "--model", str(store.tiny_bert), *ENCODER_TINY,
                             "--limit", "20", "--no-save-model", "--run-name", "unsaved"])
    assert model_registry.logged_model(outcome.run_id) is None
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("A wonderful film.\n")
    with pytest.raises(UserError, match=f"^--run-id {outcome.run_id}: the run logged no model 'model'"):
        predict("--run-id", outcome.run_id, "--input", str(reviews), "--out", str(tmp_path / "out.csv"))


# --- 3: the Model Registry ----------------------------------------------------------------------

def register(*argv):
    return script_main("register")(list(argv))


def versions(store: Store, name: str):
    from mlflow.tracking import MlflowClient
    return MlflowClient(store.uri).search_model_versions(f"name = '{name}'")


@pytest.mark.slow
def test_register_flag_registers_the_finished_run(store, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "served")
    outcome = train("tfidf", ["--data-dir", str(store.data_dir), "--run-name", "registered",
                              "--register", "imdb-flagged"])
    (version,) = versions(store, "imdb-flagged")
    assert version.run_id == outcome.run_id and str(version.version) == "1"
    assert MlflowClient(store.uri).get_run(outcome.run_id).info.status == "FINISHED"
    assert f"registered runs:/{outcome.run_id}/model as models:/imdb-flagged/1" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--register", "imdb lstm"], "--register: expected a model name of letters"),
    (["--register", "imdb-x", "--no-save-model"], r"--register: expected a model to register \(drop --no-save-model\)"),
])
def test_register_flag_refuses_before_training(argv, message, tiny_data_dir):
    from imdb_sentiment.cli import parse

    with pytest.raises(UserError, match=message):
        parse("bert", ["--data-dir", str(tiny_data_dir), *argv])


@pytest.mark.slow
def test_make_register_picks_the_best_finished_run_and_moves_champion(store, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    from imdb_sentiment.store import RunStore, select_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "served")
    # A second LSTM run: make register must pick the one the tables pick.
    train("lstm", ["--data-dir", str(store.data_dir), *TINY_LSTM, "--no-progress", "--seed", "7",
                   "--run-name", "lstm-seed-7"])
    lstm_runs = [r for r in RunStore(store.uri, "served").runs() if r.family == "lstm" and r.finished]
    best = select_run(lstm_runs, "best")
    register("--family", "lstm")
    client = MlflowClient(store.uri)
    champion = client.get_model_version_by_alias("imdb-lstm", "champion")
    assert champion.run_id == best.run_id
    assert f"best lstm run: {best.run_id}" in capsys.readouterr().out
    register("--family", "lstm")  # again: the same version, no new one
    assert [str(v.version) for v in versions(store, "imdb-lstm")] == ["1"]
    register("--family", "tfidf", "--name", "imdb-tfidf-best")
    assert str(client.get_model_version_by_alias("imdb-tfidf-best", "champion").version) == "1"


@pytest.mark.parametrize("argv, message", [
    (["--family", "gru"], "^--family gru: no finished run in experiment 'served'; train one first"),
    (["--family", "nope"], "^--family nope: unknown family; known: lstm, "),
    (["--family", "lstm", "--name", "a/b"], "^--name 'a/b': expected letters, digits"),
])
@pytest.mark.slow
def test_make_register_mistakes_are_one_line(argv, message, store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "served")
    with pytest.raises(UserError, match=message):
        register(*argv)


@pytest.mark.slow
def test_make_register_without_family_prints_usage():
    done = run_make("register", timeout=60)
    assert done.returncode == 2 and "usage: make register FAMILY=<family>" in done.stderr


# --- 5: make predict reads a registered model ------------------------------------------------------

def predict(*argv):
    return script_main("predict")(list(argv))


@pytest.mark.slow
def test_predict_by_alias_writes_the_logged_numbers(store, monkeypatch, tmp_path):
    from imdb_sentiment.data import to_kaggle_tsv

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    register("--family", "tfidf")
    test = held_out_test(store)
    reviews, out = tmp_path / "reviews.tsv", tmp_path / "out.csv"
    reviews.write_bytes(to_kaggle_tsv(test, "test"))
    predict("--model", "models:/imdb-tfidf@champion", "--input", str(reviews), "--out", str(out))
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    logged = logged_predictions(store, "tfidf", tmp_path)
    assert [i for i, _ in rows] == list(logged["id"])
    np.testing.assert_allclose([float(p) for _, p in rows], logged["prob_positive"], atol=2e-6)


@pytest.mark.parametrize("model, message", [
    ("models:/imdb-tfidf@nope", "registered model 'imdb-tfidf' has no alias 'nope' .aliases: champion"),
    ("models:/imdb-unknown@champion", "no registered model 'imdb-unknown' .registered: "),
    ("models:/imdb-tfidf/99", "registered model 'imdb-tfidf' has no version 99 .versions: 1"),
    ("runs:/0123abcd/model", "no such run in the MLflow store"),
])
@pytest.mark.slow
def test_predict_names_what_is_not_there_in_one_line(model, message, store, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    register("--family", "tfidf")
    reviews, out = tmp_path / "reviews.txt", tmp_path / "out.csv"
    reviews.write_text("A wonderful film.\n")
    with pytest.raises(UserError, match=f"^--model {model}: {message}"):
        predict("--model", model, "--input", str(reviews), "--out", str(out))
    assert not out.exists()


# --- 4: make serve ------------------------------------------------------------------------------

REVIEWS = ["A wonderful film: superb acting, I loved it.", "Dull, badly acted, a waste of two hours.",
           "Not bad at all."]


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    """`make serve MODEL=models:/imdb-lstm@champion PORT=<free>`: (base URL, in-process probabilities)."""
    from imdb_sentiment import inference, serving

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store.uri)
        patch.setenv("MLFLOW_EXPERIMENT_NAME", "served")
        register("--family", "lstm")
        probs = serving.predict_probabilities(inference.load_model("models:/imdb-lstm@champion"), REVIEWS)
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri, **OFFLINE}
    with open(log_path, "w") as log:
        process = subprocess.Popen(["make", "--no-print-directory", "serve", "MODEL=models:/imdb-lstm@champion",
                                    f"PORT={port}"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/ping", process, timeout=180)
        yield base, probs, log_path
    finally:
        stop_process_group(process)


def invoke(base: str, body) -> tuple[int, dict]:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/invocations", data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": ["review"], "data": [[r] for r in REVIEWS]}},
    {"dataframe_records": [{"review": r} for r in REVIEWS]},
    {"inputs": {"review": REVIEWS}},
], ids=["dataframe_split", "dataframe_records", "inputs"])
@pytest.mark.slow
def test_make_serve_answers_mlflows_json_formats(body, server):
    base, probs, _ = server
    status, answer = invoke(base, body)
    assert status == 200, answer
    np.testing.assert_allclose([p["probability"] for p in answer["predictions"]], probs, atol=1e-6)
    assert all(p["label"] in (0, 1) for p in answer["predictions"])


def in_format(name: str, rows, column: str = "review") -> dict:
    """A request body carrying `rows` in one of MLflow's JSON formats."""
    return {"dataframe_split": {"dataframe_split": {"columns": [column], "data": [[r] for r in rows]}},
            "dataframe_records": {"dataframe_records": [{column: r} for r in rows]},
            "inputs": {"inputs": {column: rows}},
            "instances": {"instances": [{column: r} for r in rows]}}[name]


# What README promises a 400 for, in each format: (rows, column, what the answer says).
BAD_REQUESTS = {"no review column": (["Great."], "text", "expected a `review` column"),
                "a number": (["Great.", 3], "review", "review 1: expected a string, got int 3"),
                "a null": ([None], "review", "review 0: expected a string, got a missing value"),
                "no rows": ([], "review", "no reviews to score: the input is empty")}
FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


@pytest.mark.slow
@pytest.mark.parametrize("body, message", [
    *[(in_format(name, rows, column), message) for name in FORMATS
      for rows, column, message in BAD_REQUESTS.values()],
    # MLflow's schema enforcement cast these to the strings "42" and "None" and answered 200
    ({"inputs": [42]}, "review 0: expected a string, got int 42"),
    ({"instances": [42]}, "review 0: expected a string, got int 42"),
    ({"inputs": ["Great.", None]}, "review 1: expected a string, got a missing value"),
    ({"inputs": None}, "expected reviews: the input is null"),
    ("not json", "valid JSON"),
], ids=[*[f"{name}-{problem}" for name in FORMATS for problem in BAD_REQUESTS],
        "inputs list of a number", "instances list of a number", "inputs list with a null", "inputs null",
        "not json"])
@pytest.mark.slow
def test_make_serve_refuses_bad_requests_and_stays_up(body, message, server):
    base, probs, _ = server
    status, answer = invoke(base, body)
    assert 400 <= status < 500 and message in answer["message"], (status, answer)
    status, answer = invoke(base, {"inputs": {"review": REVIEWS[:1]}})  # still serving
    assert status == 200 and answer["predictions"][0]["probability"] == pytest.approx(probs[0], abs=1e-6)


@pytest.mark.slow
@pytest.mark.slow
def test_a_burst_of_good_and_bad_requests_loses_no_good_answer(server):
    """Bounded: 90 requests from 6 clients on localhost, every third one bad."""
    from concurrent.futures import ThreadPoolExecutor

    base, probs, _ = server
    bad = [in_format(name, rows, column) for name in FORMATS for rows, column, _ in BAD_REQUESTS.values()]

    def send(i):
        if i % 3 == 2:
            return "bad", invoke(base, bad[i % len(bad)])
        return "good", invoke(base, in_format(FORMATS[i % 4], REVIEWS))

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(send, range(90)))
    for kind, (status, answer) in answers:
        if kind == "bad":
            assert status == 400, answer
        else:
            assert status == 200, answer
            np.testing.assert_allclose([p["probability"] for p in answer["predictions"]], probs, atol=1e-6)


@pytest.mark.slow
def test_make_serve_says_where_and_refuses_a_missing_alias_in_one_line(server, store):
    base, _, log_path = server
    assert f"serving models:/imdb-lstm@champion on {base}/invocations" in log_path.read_text()
    done = subprocess.run([PYTHON, "models/serve.py", "--model", "models:/imdb-lstm@nope", "--port",
                           str(free_port())], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MLFLOW_TRACKING_URI": store.uri})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --model models:/imdb-lstm@nope: registered model 'imdb-lstm' has no alias 'nope' "
        "(aliases: champion; make register sets champion)"]


@pytest.mark.slow
def test_make_serve_without_model_prints_usage():
    done = run_make("serve", timeout=60)
    assert done.returncode == 2 and "usage: make serve MODEL=" in done.stderr


# --- 3 on a tracking server -----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.slow
def test_register_and_load_through_a_real_tracking_server(store, tmp_path, monkeypatch):
    import mlflow

    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen([PYTHON, "-m", "mlflow", "server", "--backend-store-uri",
                                   f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
                                   str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
                                   "--workers", "1"], cwd=tmp_path, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        uri = f"http://127.0.0.1:{port}"
        wait_for_http(f"{uri}/health", server, timeout=120)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "remote")
        outcome = train("tfidf", ["--data-dir", str(store.data_dir), "--run-name", "remote",
                                  "--register", "imdb-remote"])
        register("--family", "tfidf", "--name", "imdb-remote")  # the same run: no new version, alias set
        client = mlflow.MlflowClient(uri)
        assert client.get_model_version_by_alias("imdb-remote", "champion").run_id == outcome.run_id
        assert len(client.search_model_versions("name = 'imdb-remote'")) == 1
        mlflow.set_tracking_uri(uri)
        from imdb_sentiment import inference, serving
        probs = serving.predict_probabilities(inference.load_model("models:/imdb-remote@champion"),
                                              held_out_test(store)["review"])
        logged = pd.read_csv(client.download_artifacts(outcome.run_id, "predictions.csv", str(tmp_path)))
        np.testing.assert_allclose(probs, logged["prob_positive"], atol=1e-5)
        assert client.get_experiment_by_name("remote").tags["mlflow.experimentKind"] == "custom_model_development"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        mlflow.set_tracking_uri(store.uri)


# --- 9: make bench-serve ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.slow
def test_make_bench_serve_on_a_tiny_scale(store, tmp_path):
    done = subprocess.run(["make", "--no-print-directory", "bench-serve",
                           f"ARGS=--data-dir {store.data_dir} --limit 60 --reviews 40 --batch-size 10 --clients 2"],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'untouched.db'}"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["model", "requests"])
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1:]}
    assert set(rows) == {"lstm", "tfidf"}
    for requests, reviews_per_s, p50, p99, errors in rows.values():
        assert requests == "4" and errors == "0"
        assert float(reviews_per_s) > 0 and 0 < float(p50) <= float(p99)
    assert not (tmp_path / "untouched.db").exists(), "the bench trains into a store of its own"
