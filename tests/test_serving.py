"""Every kind of model logged as an mlflow.pyfunc (serving.log_*_model), built tiny here:
an embedding network, a BERT classifier fine-tuned in full and with a LoRA adapter, the
TF-IDF pipeline, PV-DBOW vectors with a logistic regression. Each is loaded back in a fresh Python process started elsewhere, without
this repo importable, and must give the in-memory model's probabilities; bad input gets a
clear error; nothing is pickled; the logged requirements cover what loading imports."""

import json
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from imdb_sentiment import linear, models, serving, text, tracking
from imdb_sentiment.encoders.tokens import predict_reviews
from tests.support import NEGATIVE, POSITIVE

REPO = Path(__file__).resolve().parent.parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
LONG = " ".join(POSITIVE + NEGATIVE) * 4  # past every max_length below: truncation is exercised
REVIEWS = POSITIVE + NEGATIVE + [LONG, "", "Zyzzyva quux: words no vocabulary holds."]
# Each chain is loaded in this order in one fresh process, so each step's new imports can be told
# apart; doc2vec needs neither torch nor scikit-learn, tfidf no gensim: their own processes.
CHAINS = [["tfidf", "embedding", "encoder", "encoder-lora"], ["doc2vec"]]
KINDS = [kind for chain in CHAINS for kind in chain]


# --- the tiny models, each with its in-memory probabilities ---------------------------------

def fitted_tfidf_pipeline():
    pipeline = linear.build_pipeline(max_n=2, max_tokens=50, hash_bits=12, min_df=1, C=4.0, max_iter=100,
                                     seed=0)
    return pipeline.fit(POSITIVE * 3 + NEGATIVE * 3, [1] * 9 + [0] * 9)


def tfidf_model():
    pipeline = fitted_tfidf_pipeline()
    probs = pipeline.predict_proba(REVIEWS)[:, 1]
    return probs, lambda threshold: serving.log_tfidf_model(pipeline, {"family": "tfidf"}, threshold)


def embedding_model():
    torch.manual_seed(0)
    vocab = text.Vocab.build(text.reviews_to_tokens(POSITIVE + NEGATIVE), min_freq=1)
    config = serving.embedding_config_type()(
        model="lstm", data_dir=".", embeddings="random", embedding_dim=16, hidden_size=16, max_length=12,
        truncation="head_tail", dropout=0.0, embedding_dropout=0.0)
    embedding = models.make_embedding(None, len(vocab), config.embedding_dim, freeze=False)
    model = models.build_model(config.model, config, embedding).eval()
    # Each review alone, straight through the network: an independent path from the pyfunc's batching.
    probs = []
    with torch.no_grad():
        for tokens in text.reviews_to_tokens(REVIEWS):
            ids = text.truncate(vocab.encode(tokens), config.max_length, config.truncation)
            ids = torch.tensor(ids if len(ids) else [text.PAD_ID], dtype=torch.long)[None]
            probs.append(torch.softmax(model(ids, torch.tensor([ids.shape[1]])), -1)[0, 1].item())
    return np.array(probs), lambda threshold: serving.log_embedding_model(model, config, vocab, threshold)


def doc2vec_model():
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument

    from imdb_sentiment.paragraph_vectors import Doc2VecState, document_words

    documents = [TaggedDocument(document_words(r, 1), [str(i)]) for i, r in enumerate((POSITIVE + NEGATIVE) * 5)]
    model = Doc2Vec(documents, dm=0, dbow_words=1, vector_size=8, window=3, min_count=1, negative=3, sample=0,
                    epochs=5, seed=0, workers=1)
    state = Doc2VecState.from_model(model, {"vector_size": 8, "negative": 3, "sample": 0, "ngrams": 1,
                                            "infer_epochs": 5, "seed": 0})
    coef, intercept = np.random.default_rng(0).normal(0.0, 40.0, size=(1, 8)), np.array([0.1])
    # Each review alone, through gensim's trained model (from the same start vector), then the
    # logistic regression in sklearn's own terms: an independent path from the pyfunc's.
    vectors = np.stack([gensim_infer(model, document_words(r, 1)) for r in REVIEWS])
    probs = 1.0 / (1.0 + np.exp(-(vectors.astype(np.float64) @ coef[0] + intercept[0])))
    return probs, lambda threshold: serving.log_doc2vec_model(state, coef, intercept, threshold, {"family": "doc2vec"})


def gensim_infer(model, words):
    """gensim's own infer_vector, started where the recipe starts (gensim's own start hashes the
    words with hash(), which changes per process)."""
    import gensim.models.doc2vec

    from imdb_sentiment.paragraph_vectors import start_vector

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gensim.models.doc2vec, "pseudorandom_weak_vector",
                      lambda size, seed_string: start_vector(words, size, 0))
        model.random.seed(0)
        return model.infer_vector(words, epochs=5)


def tiny_tokenizer(folder: Path):
    """A WordPiece tokenizer made here: specials, single characters (any word can be spelled), words."""
    from transformers import BertTokenizerFast

    words = sorted({w for r in REVIEWS for w in re.findall(r"[a-z]+", r.lower())})
    chars = sorted({c for r in REVIEWS for c in r.lower() if not c.isspace()})
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars if c.isalnum()]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(pieces + [w for w in words if w not in pieces]) + "\n")
    return BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True)


def tiny_bert(tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=0, num_labels=2,
                        initializer_range=0.5)  # wide weights: answers that differ between reviews
    return BertForSequenceClassification(config).eval()


ENCODER_SETTINGS = {"max_length": 24, "truncation": "head_tail"}


def encoder_probs(model, tokenizer):
    return predict_reviews(model, tokenizer, REVIEWS, **ENCODER_SETTINGS)


def encoder_model(folder: Path):
    tokenizer = tiny_tokenizer(folder / "tokenizer")
    model = tiny_bert(tokenizer)
    return encoder_probs(model, tokenizer), \
        lambda threshold: serving.log_encoder_model(model, tokenizer, ENCODER_SETTINGS, threshold)


def encoder_lora_model(folder: Path):
    from peft import LoraConfig, TaskType, get_peft_model

    tokenizer = tiny_tokenizer(folder / "tokenizer")
    base = tiny_bert(tokenizer)
    base.save_pretrained(folder / "base")
    base_probs = encoder_probs(base, tokenizer)
    model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8,
                                            target_modules=["query", "value"], modules_to_save=["classifier"]))
    with torch.no_grad():  # LoRA starts as the identity (B = 0): move it, as training would
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.5)
    model.eval()
    probs = encoder_probs(model, tokenizer)
    assert np.abs(probs - base_probs).max() > 1e-3, "the adapter must change the base model's answers"
    settings = {**ENCODER_SETTINGS, "base_model": str(folder / "base")}
    return probs, lambda threshold: serving.log_encoder_model(model, tokenizer, settings, threshold)


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """kind -> (model URI, in-memory probabilities, threshold, MLflow log lines and warnings while logging)."""
    import mlflow

    folder = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    builders = {"tfidf": tfidf_model, "embedding": embedding_model,
                "encoder": lambda: encoder_model(folder / "encoder"),
                "encoder-lora": lambda: encoder_lora_model(folder / "lora"), "doc2vec": doc2vec_model}
    results = {}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "serving", **OFFLINE}.items():
            patch.setenv(key, value)
        mlflow.set_tracking_uri(uri)
        for kind in KINDS:
            probs, log = builders[kind]()
            # Not 0.5, and some reviews lie between the two: the labels show which threshold was applied.
            threshold = float(np.quantile(probs, 0.6))
            records = Records()
            logging.getLogger("mlflow").addHandler(records)
            try:
                with warnings.catch_warnings(record=True) as caught, \
                        tracking.start_run(f"serving-{kind}", {"family": kind}) as run:
                    warnings.simplefilter("always")
                    log(threshold)
            finally:
                logging.getLogger("mlflow").removeHandler(records)
            said = records.messages + [str(w.message) for w in caught]
            results[kind] = (f"runs:/{run.info.run_id}/model", probs, threshold, said)
        yield uri, results


# --- a fresh process, elsewhere, without this repo ---------------------------------------------

FRESH_SCRIPT = r"""
import importlib.metadata, importlib.util, json, sys
# The venv has this repo installed in editable mode: take that finder away, so the model
# can only work with the copy of the package it carries.
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
assert importlib.util.find_spec("imdb_sentiment") is None, "the repo's package is importable"
import mlflow.pyfunc, pandas as pd

reviews, uris = json.loads(sys.argv[1]), json.loads(sys.argv[2])
top_level = importlib.metadata.packages_distributions()
out = {}
for kind, uri in uris.items():
    model = mlflow.pyfunc.load_model(uri)
    answer = model.predict(pd.DataFrame({"review": reviews}))
    imported = sorted({d.lower() for m in list(sys.modules) for d in top_level.get(m.split(".")[0], [])})
    out[kind] = {"probability": answer["probability"].tolist(), "label": answer["label"].tolist(),
                 "dtypes": [str(answer[c].dtype) for c in ("probability", "label")],
                 "package": sys.modules["imdb_sentiment"].__file__, "imported": imported}
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def fresh(logged, tmp_path_factory):
    store, results = logged
    folder = tmp_path_factory.mktemp("elsewhere")
    (folder / "load_models.py").write_text(FRESH_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update({"MLFLOW_TRACKING_URI": store, **OFFLINE})
    answers = {}
    for chain in CHAINS:
        uris = {kind: results[kind][0] for kind in chain}
        done = subprocess.run([sys.executable, "load_models.py", json.dumps(REVIEWS), json.dumps(uris)],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert done.returncode == 0 and lines, \
            f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        answers.update(json.loads(lines[0][len("RESULT "):]))
    return answers


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_fresh_process_elsewhere_gives_the_same_probabilities(kind, logged, fresh):
    _, probs, threshold, _ = logged[1][kind]
    answer = fresh[kind]
    assert np.ptp(probs) > 1e-3, "a model that says the same for every review would hide a broken reload"
    np.testing.assert_allclose(answer["probability"], probs, atol=1e-5, rtol=0)
    assert answer["label"] == [int(p >= threshold) for p in answer["probability"]]
    assert 0 < sum(answer["label"]) < len(REVIEWS)
    assert answer["dtypes"] == ["float64", "int64"]
    package = Path(answer["package"])
    assert REPO not in package.parents and package.parent.parent.name == "code", package


# Imported when installed, not needed to predict.
NOT_NEEDED = {"bitsandbytes": "peft imports it if it can; the adapter is reloaded over a full-precision base",
              "pyyaml": "mlflow's own dependency (it reads MLmodel files with it): installing mlflow brings it"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_the_requirements_pin_what_loading_imports(kind, logged, fresh):
    import mlflow.artifacts

    def names(path):
        return {line.split("==")[0].strip().lower() for line in Path(path).read_text().splitlines()
                if "==" in line and not line.startswith("#")}

    required = names(mlflow.artifacts.download_artifacts(f"{logged[1][kind][0]}/requirements.txt"))
    pinned = names(REPO / "requirements.txt")
    # Imported so far in the fresh process (earlier kinds' imports included: KINDS is ordered so that
    # each kind needs what the ones before it did).
    imported = set(fresh[kind]["imported"]) & pinned - set(NOT_NEEDED)
    assert imported <= required, f"imported but not required: {sorted(imported - required)}"
    assert "pytest" not in required and "selenium" not in required
    assert ("torch" in required) == (kind not in ("tfidf", "doc2vec"))
    assert ("gensim" in required) == (kind == "doc2vec")
    assert ("peft" in required) == (kind == "encoder-lora")


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_is_pickled(kind, logged):
    import mlflow.artifacts
    import yaml

    local = Path(mlflow.artifacts.download_artifacts(logged[1][kind][0]))
    files = [p for p in local.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib")]
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
    assert "model_code_path" in flavor and "python_model" not in flavor
    assert any(p.suffix == ".safetensors" for p in files)


@pytest.mark.parametrize("kind", KINDS)
def test_logging_warns_of_no_pickle_and_the_example_serves(kind, logged):
    said = logged[1][kind][3]
    assert any("Validating input example" in line for line in said), "MLflow's log lines were not captured"
    assert not [line for line in said if re.search("pickle|type hint|failed to validate", line, re.I)]


@pytest.fixture(scope="module")
def loaded(logged):
    """kind -> the pyfunc loaded in this process (for the input checks: no need for a fresh one)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", logged[0])
        yield {kind: serving.load(logged[1][kind][0]) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_reviews_in_any_accepted_form_give_the_same_answer(kind, logged, loaded):
    from mlflow.exceptions import MlflowException

    pyfunc, probs = loaded[kind], logged[1][kind][1]

    def same(answer, expected):
        np.testing.assert_allclose(answer, expected, atol=1e-5, rtol=0)

    same(serving.predict_probabilities(pyfunc, REVIEWS), probs)
    same(pyfunc.predict({"review": REVIEWS[:2]})["probability"], probs[:2])
    same(pyfunc.predict(pd.Series(REVIEWS[:2], name="review"))["probability"], probs[:2])
    direct = pyfunc.unwrap_python_model().predict(None, REVIEWS)  # a list of strings, past MLflow's checks
    same(direct["probability"], probs)
    with pytest.raises(MlflowException, match="missing inputs \\['review'\\]"):
        pyfunc.predict(REVIEWS)  # through MLflow, the signature asks for the named column


BAD_INPUTS = {
    "no review column": (pd.DataFrame({"text": ["Great film."]}), r"missing inputs \['review'\]"),
    "numbers": (pd.DataFrame({"review": [1, 2]}), "review"),
    "a missing review": (pd.DataFrame({"review": ["Great film.", None]}),
                         "review 1: expected a string, got a missing value"),
    "no rows": (pd.DataFrame({"review": pd.Series([], dtype=str)}), "no reviews to score: the input is empty"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_a_clear_error_the_server_answers_400(kind, case, loaded):
    from mlflow.exceptions import MlflowException

    model_input, message = BAD_INPUTS[case]
    with pytest.raises(MlflowException, match=message) as raised:
        loaded[kind].predict(model_input)
    assert raised.value.get_http_status_code() == 400


@pytest.mark.parametrize("model_input, message", [
    (["Great film.", 3], "review 1: expected a string, got int 3"),
    ([], "no reviews to score"),
    ("Great film.", "expected a DataFrame with a `review` column or a list of strings, got str"),
])
def test_the_model_itself_checks_what_mlflow_lets_through(model_input, message):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match=re.escape(message)):
        serving.reviews_from_input(model_input)


def test_logging_refuses_what_it_cannot_rebuild(logged):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    with pytest.raises(ValueError, match="expected the steps of linear.build_pipeline"):
        serving.log_tfidf_model(Pipeline([("classifier", LogisticRegression())]))
    with pytest.raises(ValueError, match="settings lack truncation"):
        serving.log_encoder_model(None, None, {"max_length": 8})
    with pytest.raises(ValueError, match="no active MLflow run"):
        serving.log_tfidf_model(fitted_tfidf_pipeline())
    with pytest.raises(ValueError, match="threshold"):
        serving.log_tfidf_model(fitted_tfidf_pipeline(), threshold=1.5)
