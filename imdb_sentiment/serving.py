"""Every family's model as one mlflow.pyfunc model: raw reviews in, P(positive) and a label out.

    with tracking.start_run(...):
        ...train...
        serving.log_embedding_model(model, config, vocab, threshold)
    pyfunc = serving.load(f"runs:/{run_id}/model")
    serving.predict_probabilities(pyfunc, ["A wonderful film."])   # -> np.ndarray

Nothing is pickled. The model is "models from code": pyfunc_model.py is
logged as the model, this package travels with it (code_paths), so it loads
in a fresh process without this repo. Its state is safetensors and JSON,
and settings.json names the kind and what rebuilding it needs:
- embedding: the network's state dict, vocab.json, the EmbeddingConfig;
- encoder: a save_pretrained folder (weights, or a PEFT adapter over the
  base checkpoint named in the settings) with its tokenizer;
- tfidf: the pipeline's parameters as JSON, its fitted arrays as safetensors;
- doc2vec: the arrays PV-DBOW inference needs as safetensors, its vocabulary as
  JSON, the logistic regression's weights;
- ensemble: each member's logged model folder, and the stacker's weights.
"""

import dataclasses
import json
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import paths
from .model_registry import MODEL_NAME, MODEL_TYPE  # noqa: F401  (serving.MODEL_NAME: what callers name)

PACKAGE_DIR = Path(__file__).resolve().parent
PYFUNC_MODEL_FILE = PACKAGE_DIR / "pyfunc_model.py"
INPUT_EXAMPLE = ["A wonderful film: the cast is superb and I loved every minute.",
                 "Dull and badly acted; I want my two hours back."]

def embedding_config_type():
    """EmbeddingConfig (imported when needed: its checks import torch)."""
    from .config import EmbeddingConfig
    return EmbeddingConfig


# --- embedding: a network on word vectors (models.py) -----------------------------------------

def log_embedding_model(model, config, vocab, threshold: float = 0.5):
    """Log an embedding-family network (built by models.build_model from config) to the active run."""
    from safetensors.torch import save_model

    settings = {"vocab_size": len(vocab), "config": dataclasses.asdict(config)}
    with tempfile.TemporaryDirectory(prefix="imdb-pyfunc-") as scratch:
        scratch = Path(scratch)
        save_model(model, str(scratch / "model.safetensors"))  # copies GPU tensors to the CPU itself
        (scratch / "vocab.json").write_text(vocab.to_json())
        return _log("embedding", settings, threshold, scratch,
                    {"weights": "model.safetensors", "vocab": "vocab.json"})


def _load_embedding(artifacts: dict, settings: dict):
    from safetensors.torch import load_model

    from . import models, text
    from .batching import TokenIds, make_loader
    from .training import predict

    # The vectors are in the weights: the config's source of them (maybe a local file) is not needed.
    config_type = embedding_config_type()
    known = {field.name for field in dataclasses.fields(config_type)}
    stored = {k: v for k, v in settings["config"].items() if k in known}
    config = config_type(**{**stored, "data_dir": ".", "embeddings": "random"})
    embedding = models.make_embedding(None, settings["vocab_size"], config.embedding_dim, freeze=True)
    model = models.build_model(config.model, config, embedding)
    load_model(model, artifacts["weights"])
    device = _device()
    model.to(device).eval()
    vocab = text.Vocab.from_json(Path(artifacts["vocab"]).read_text())

    def probabilities(reviews):
        # As the word-vector recipe batches its splits: truncated ids, length-grouped batches.
        sequences = [text.truncate(vocab.encode(tokens), config.max_length, config.truncation)
                     for tokens in text.reviews_to_tokens(reviews)]
        loader = make_loader(TokenIds(sequences, np.full(len(sequences), -1)), config.eval_batch_size, False, 0)
        return predict(model, loader, models.forward_batch, device)[0]

    return probabilities


# --- encoder: a save_pretrained folder, or a PEFT adapter over its base -----------------------

def log_encoder_model(model, tokenizer, settings: dict, threshold: float = 0.5):
    """Log a transformers classifier, or a PEFT model over one, with its tokenizer.

    settings: max_length (tokens per review, special tokens included: the budget
    the run tokenised with) and truncation ("head" or "head_tail"); for a PEFT
    model, base_model (the checkpoint the adapter goes on: a Hugging Face name
    or a folder the server can read; default: the one the adapter records).
    Optional: batch_size; any other entries are kept in settings.json.
    """
    settings = dict(settings)
    missing = [key for key in ("max_length", "truncation") if key not in settings]
    if missing:
        raise ValueError(f"log_encoder_model: settings lack {', '.join(missing)}")
    is_peft = hasattr(model, "peft_config")
    if is_peft:
        settings.setdefault("base_model", model.peft_config[model.active_adapter].base_model_name_or_path)
        if not settings["base_model"]:
            raise ValueError("log_encoder_model: a PEFT model needs settings['base_model'], the checkpoint "
                             "its adapter goes on")
    with tempfile.TemporaryDirectory(prefix="imdb-pyfunc-") as scratch:
        scratch = Path(scratch)
        model.save_pretrained(scratch / "encoder")
        tokenizer.save_pretrained(scratch / "encoder")
        pickled = [p.name for p in (scratch / "encoder").iterdir() if p.suffix in (".bin", ".pt", ".pkl", ".pth")]
        if pickled:
            raise ValueError(f"log_encoder_model: save_pretrained wrote pickled weights ({', '.join(pickled)}); "
                             "only safetensors are logged")
        quantised = is_peft and settings.get("quantize", "none") != "none"
        return _log("encoder", settings, threshold, scratch, {"encoder": "encoder"},
                    extra_requirements=(["peft"] if is_peft else []) + (["bitsandbytes"] if quantised else []))


# The pipeline linear.build_pipeline makes: (step name, class) in order.


def _load_encoder(artifacts: dict, settings: dict):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from .encoders.tokens import predict_reviews

    folder = Path(artifacts["encoder"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    device = _device()
    if (folder / "adapter_config.json").exists():
        from peft import PeftModel

        # The base exactly as the run trained on it: quantised the same way, or not at all.
        base = _adapter_base(settings, tokenizer, device)
        model = PeftModel.from_pretrained(base, folder)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder)
    if settings.get("quantize", "none") == "none":
        model.to(device)  # a quantised base was placed by its device_map
    model.eval()
    max_length, truncation = int(settings["max_length"]), settings["truncation"]
    batch_size = int(settings.get("batch_size", 64))
    precision = _scoring_precision(folder, device)
    if precision == "int8":
        from .encoders.scoring import dynamic_int8
        model = dynamic_int8(model)

    def probabilities(reviews):
        return predict_reviews(model, tokenizer, reviews, max_length, truncation, batch_size, device=device,
                               precision="fp32" if precision == "int8" else precision)
    return probabilities


# What an encoder's logged model scores in: fp32 (the default) reproduces the run's logged
# probabilities within 1e-5; bf16 (CPUs with native bf16, GPUs) and int8 (torch's dynamic
# quantisation, CPU) are faster and differ from them by what `make bench-predict` prints as
# max |dp| (labels of reviews near the threshold can flip); auto: bf16 where native, else fp32.
# Teacher scoring uses it (--teacher-precision).
PRECISION_VARIABLE = "IMDB_PREDICT_PRECISION"


def resolve_scoring_precision(precision: str, device=None) -> str:
    """fp32, bf16 or int8 for a requested scoring precision; auto: bf16 where `device` (default: the
    one a model loads on) has it natively, else fp32."""
    from .encoders.scoring import SERVED
    from .errors import UserError

    if precision not in ("auto", *SERVED):
        raise UserError(f"${PRECISION_VARIABLE}={precision}: expected one of auto, {', '.join(SERVED)}")
    if precision != "auto":
        return precision
    import torch

    from .device import cpu_has_native_bf16

    device = device or _device()
    native = cpu_has_native_bf16() if device.type == "cpu" else \
        device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    return "bf16" if native else "fp32"


def _scoring_precision(folder: Path, device) -> str:
    import os

    precision = resolve_scoring_precision(os.environ.get(PRECISION_VARIABLE) or "fp32", device)
    if precision == "int8" and (device.type != "cpu" or (folder / "adapter_config.json").exists()):
        print(f"note: ${PRECISION_VARIABLE}=int8 applies to a fully fine-tuned encoder on a CPU; "
              "this one scores in fp32", flush=True)
        return "fp32"
    return precision


@contextmanager
def scoring_precision(precision: str):
    """Models loaded inside score their encoders in `precision` (PRECISION_VARIABLE)."""
    import os

    before = os.environ.get(PRECISION_VARIABLE)
    os.environ[PRECISION_VARIABLE] = precision
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PRECISION_VARIABLE, None)
        else:
            os.environ[PRECISION_VARIABLE] = before


def _adapter_base(settings: dict, tokenizer, device):
    """The checkpoint an adapter goes on, loaded as training loaded it (encoders.loading.
    load_classifier): a run on an 8-bit or 4-bit base gets that base again, never a
    full-precision one that would compute other probabilities than the run logged."""
    from .encoders.loading import load_classifier
    from .errors import UserError

    quantize = settings.get("quantize", "none")
    if quantize != "none":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise UserError(f"this adapter was trained on a {quantize} base: serving it needs bitsandbytes "
                            "(pip install bitsandbytes), which is not installed here") from None
    from .encoders.checkpoints import local_checkpoint

    base = local_checkpoint(settings["base_model"], "the adapter's base model")
    model_type = settings.get("model_type")
    if model_type is None:
        from transformers import AutoConfig
        model_type = AutoConfig.from_pretrained(base).model_type
    return load_classifier(base, model_type, device, quantize,
                           settings.get("compute_dtype", "float32"), tokenizer.pad_token_id)


# --- tfidf: the NB-LR pipeline as JSON and safetensors ----------------------------------------

TFIDF_STEPS = [("ngrams", "HashingVectorizer"), ("tfidf", "TfidfTransformer"),
               ("naive_bayes", "NaiveBayesScaler"), ("classifier", "LogisticRegression")]


def log_tfidf_model(pipeline, settings: dict | None = None, threshold: float = 0.5):
    """Log a fitted linear.build_pipeline pipeline as parameters (JSON) and arrays (safetensors).

    settings: extra entries kept in settings.json (the pipeline describes itself).
    """
    from safetensors.numpy import save_file

    steps = [(name, type(step).__name__) for name, step in pipeline.steps]
    if steps != TFIDF_STEPS:
        raise ValueError(f"log_tfidf_model: expected the steps of linear.build_pipeline {TFIDF_STEPS}, "
                         f"got {steps}")
    ngrams, tfidf, naive_bayes, classifier = (step for _, step in pipeline.steps)
    hashing = {k: v for k, v in ngrams.get_params().items() if k not in ("analyzer", "dtype")}
    state = {"ngrams": {**hashing, "dtype": np.dtype(ngrams.dtype).name,
                        "analyzer": {"max_n": ngrams.analyzer.max_n, "max_tokens": ngrams.analyzer.max_tokens}},
             "tfidf": tfidf.get_params(), "naive_bayes": naive_bayes.get_params(),
             "classifier": classifier.get_params()}
    arrays = {"idf": tfidf.idf_, "ratio": naive_bayes.ratio_, "coef": classifier.coef_,
              "intercept": classifier.intercept_, "classes": classifier.classes_}
    with tempfile.TemporaryDirectory(prefix="imdb-pyfunc-") as scratch:
        scratch = Path(scratch)
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(scratch / "tfidf.safetensors"))
        return _log("tfidf", {**(settings or {}), "pipeline": state}, threshold, scratch,
                    {"arrays": "tfidf.safetensors"})


def _load_tfidf(artifacts: dict, settings: dict):
    from safetensors.numpy import load_file
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from .linear import NaiveBayesScaler, NgramAnalyzer

    state, arrays = settings["pipeline"], load_file(artifacts["arrays"])
    hashing = dict(state["ngrams"])
    analyzer, dtype = NgramAnalyzer(**hashing.pop("analyzer")), np.dtype(hashing.pop("dtype")).type
    hashing["ngram_range"] = tuple(hashing["ngram_range"])  # JSON made the tuple a list
    ngrams = HashingVectorizer(analyzer=analyzer, dtype=dtype, **hashing)
    tfidf = TfidfTransformer(**state["tfidf"])
    tfidf.idf_, tfidf.n_features_in_ = arrays["idf"], len(arrays["idf"])
    naive_bayes = NaiveBayesScaler(**state["naive_bayes"])
    naive_bayes.ratio_ = arrays["ratio"]
    classifier = LogisticRegression(**state["classifier"])
    classifier.coef_, classifier.intercept_, classifier.classes_ = arrays["coef"], arrays["intercept"], \
        arrays["classes"]
    classifier.n_features_in_ = arrays["coef"].shape[1]
    pipeline = Pipeline([("ngrams", ngrams), ("tfidf", tfidf), ("naive_bayes", naive_bayes),
                         ("classifier", classifier)])
    return lambda reviews: pipeline.predict_proba(reviews)[:, 1]


# --- doc2vec: PV-DBOW inference arrays and a logistic regression ------------------------------

def log_doc2vec_model(state, coef, intercept, threshold: float = 0.5, settings: dict | None = None):
    """Log a doc2vec-family model: what inferring a review's vector needs (recipes/doc2vec.py's
    Doc2VecState: output weights, sampling tables, as safetensors; the vocabulary as JSON; the
    inference settings with the seed) and the logistic regression's weights. Not gensim's own
    save, which pickles the model object.

    settings: extra entries kept in settings.json."""
    from safetensors.numpy import save_file

    arrays = {**state.arrays(), "coef": np.asarray(coef, dtype=np.float64),
              "intercept": np.asarray(intercept, dtype=np.float64)}
    with tempfile.TemporaryDirectory(prefix="imdb-pyfunc-") as scratch:
        scratch = Path(scratch)
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(scratch / "doc2vec.safetensors"))
        (scratch / "words.json").write_text(json.dumps(state.words))
        return _log("doc2vec", {**(settings or {}), "doc2vec": state.settings}, threshold, scratch,
                    {"arrays": "doc2vec.safetensors", "words": "words.json"})


def _load_doc2vec(artifacts: dict, settings: dict):
    from safetensors.numpy import load_file

    from .paragraph_vectors import Doc2VecState, probabilities

    arrays = load_file(artifacts["arrays"])
    words = json.loads(Path(artifacts["words"]).read_text())
    state = Doc2VecState(words, *(arrays[name] for name in Doc2VecState.ARRAYS), settings["doc2vec"])
    infer = state.inferrer()  # the run's inference: the same seed, epochs and tokens
    return lambda reviews: probabilities(infer(reviews), arrays["coef"], arrays["intercept"])


# --- ensemble: its members' model folders and the stacker -------------------------------------

def download_model(run_id: str, folder: Path) -> Path:
    """The folder of the model a run logged (MLmodel, artifacts/settings.json, ...), downloaded into `folder`."""
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{MODEL_NAME}", dst_path=str(folder)))


def log_ensemble_model(members: list[tuple[str, str]], coef, intercept: float, threshold: float = 0.5):
    """Log a stacked ensemble: each member's logged model (members: (run id, family) in the
    order of coef) copied inside it, and the stacker's weights on their logits. It loads and
    serves on its own, without the member runs or their store (a LoRA member on an mlm run's
    encoder reads that encoder from the store: encoders/checkpoints.py)."""
    with tempfile.TemporaryDirectory(prefix="imdb-pyfunc-") as scratch:
        scratch = Path(scratch)
        folders, kinds = {}, set()
        for index, (run_id, _) in enumerate(members):
            folder = download_model(run_id, scratch / f"member{index}")
            folders[f"member{index}"] = folder.relative_to(scratch)
            kinds.add(json.loads((folder / "artifacts" / "settings.json").read_text())["kind"])
        settings = {"members": [{"run_id": run_id, "family": family, "artifact": f"member{index}"}
                                for index, (run_id, family) in enumerate(members)],
                    "coef": [float(c) for c in coef], "intercept": float(intercept),
                    "member_kinds": sorted(kinds)}
        extra = sorted({name for kind in kinds for name in KINDS[kind].requirements})
        return _log("ensemble", settings, threshold, scratch, folders, extra_requirements=extra)


def _load_ensemble(artifacts: dict, settings: dict):
    import mlflow.pyfunc

    from .combine import Stacker, logit

    members = [mlflow.pyfunc.load_model(artifacts[member["artifact"]]) for member in settings["members"]]
    stacker = Stacker(np.asarray(settings["coef"], dtype=np.float64), float(settings["intercept"]))

    def probabilities(reviews):
        return stacker.predict(np.stack([logit(predict_probabilities(m, reviews)) for m in members], axis=1))
    return probabilities


# --- what every kind shares (pyfunc_model.py's load_context calls load_predictor) -------------

@dataclass(frozen=True)
class Kind:
    load: Callable  # (artifacts, settings) -> (reviews -> probabilities)
    # What loading and predicting imports (beyond mlflow): the model's pip requirements are
    # these names' pinned lines in requirements.txt. tests/test_serving.py checks that a fresh
    # process imports nothing pinned beyond them.
    requirements: list[str]


# settings.json's kind -> how to rebuild it and what it needs
KINDS = {
    # accelerate: the shared loop's predict() asks it which process it is in
    "embedding": Kind(_load_embedding, ["torch", "accelerate", "safetensors", "numpy", "pandas", "scikit-learn",
                                        "scipy", "tqdm"]),
    "encoder": Kind(_load_encoder, ["torch", "transformers", "tokenizers", "accelerate", "safetensors", "numpy",
                                    "pandas", "scikit-learn", "scipy", "tqdm"]),
    # tqdm: MLflow draws its download bars with it when it is installed
    "tfidf": Kind(_load_tfidf, ["scikit-learn", "scipy", "safetensors", "numpy", "pandas", "tqdm"]),
    # gensim imports scipy at load; tqdm draws the inference bar (off when served)
    "doc2vec": Kind(_load_doc2vec, ["gensim", "scipy", "safetensors", "numpy", "pandas", "tqdm"]),
    # its members' kinds add theirs (log_ensemble_model)
    "ensemble": Kind(_load_ensemble, ["numpy", "pandas", "tqdm"]),
}


def pip_requirements(kind: str, extra: list[str] = ()) -> list[str]:
    """The pinned lines of requirements.txt that a kind's model needs, mlflow first."""
    pins = {}
    for line in (paths.REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            pins[line.split("==")[0].strip().lower()] = line
    wanted = list(dict.fromkeys(["mlflow", *KINDS[kind].requirements, *extra]))
    unpinned = [name for name in wanted if name not in pins]
    if unpinned:
        raise ValueError(f"requirements.txt pins no version of {', '.join(unpinned)}")
    return [pins[name] for name in wanted]


def _log(kind: str, settings: dict, threshold: float, folder: Path, artifacts: dict,
         extra_requirements: list[str] = ()):
    """Write settings.json into folder and log the pyfunc with folder's artifacts to the active run."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a number in [0, 1], got {threshold!r}")
    if mlflow.active_run() is None:
        raise ValueError(f"log_{kind}_model: no active MLflow run to log to (use tracking.start_run)")
    (folder / "settings.json").write_text(json.dumps({"kind": kind, "threshold": float(threshold), **settings},
                                                     indent=2, default=str))
    signature = ModelSignature(inputs=Schema([ColSpec("string", "review")]),
                               outputs=Schema([ColSpec("double", "probability"), ColSpec("long", "label")]))
    return mlflow.pyfunc.log_model(
        name=MODEL_NAME, python_model=str(PYFUNC_MODEL_FILE),
        artifacts={"settings": str(folder / "settings.json"),
                   **{name: str(folder / relative) for name, relative in artifacts.items()}},
        code_paths=[str(PACKAGE_DIR)], signature=signature,
        input_example=pd.DataFrame({"review": INPUT_EXAMPLE}),
        pip_requirements=pip_requirements(kind, list(extra_requirements)),
        model_type=MODEL_TYPE, tags={"kind": kind, "threshold": f"{threshold:.6f}"})


@dataclass
class Predictor:
    """reviews -> P(positive); a review is positive when its probability >= threshold."""
    probabilities: Callable[[list[str]], np.ndarray]
    threshold: float
    settings: dict


def load_predictor(artifacts: dict) -> Predictor:
    """The predictor settings.json describes, rebuilt from the artifacts (name -> local path)."""
    settings = json.loads(Path(artifacts["settings"]).read_text())
    kind = settings.get("kind")
    if kind not in KINDS:
        raise ValueError(f"settings.json: kind {kind!r} unknown; known kinds: {', '.join(sorted(KINDS))}")
    return Predictor(KINDS[kind].load(artifacts, settings), float(settings.get("threshold", 0.5)), settings)


DEVICE_VARIABLE = "IMDB_PREDICT_DEVICE"


def _device():
    """$IMDB_PREDICT_DEVICE (cpu, cuda, cuda:N, mps) when set, else the best there is."""
    import os

    from .device import detect_device
    return detect_device(os.environ.get(DEVICE_VARIABLE) or "auto")


def reviews_from_input(model_input) -> list[str]:
    """The reviews of a pyfunc input: a DataFrame with a `review` column, a Series, a list of
    strings or {"review": [...]}. Anything else raises an MlflowException that names the problem
    (INVALID_PARAMETER_VALUE: the scoring server answers 400)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    def invalid(message):
        return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)

    if isinstance(model_input, dict) and "review" in model_input:
        model_input = pd.DataFrame({"review": list(np.atleast_1d(model_input["review"]))})
    if isinstance(model_input, pd.DataFrame):
        if "review" not in model_input.columns:
            raise invalid(f"expected a `review` column of strings; the input has columns "
                          f"{[str(c) for c in model_input.columns]}")
        reviews = model_input["review"].tolist()
        # MLflow's schema enforcement turns {"review": [...]} into one row holding the list.
        if len(reviews) == 1 and isinstance(reviews[0], (list, np.ndarray)):
            reviews = list(reviews[0])
    elif isinstance(model_input, (pd.Series, list, tuple, np.ndarray)):
        reviews = list(model_input)
    else:
        raise invalid(f"expected a DataFrame with a `review` column or a list of strings, "
                      f"got {type(model_input).__name__}")
    if not reviews:
        raise invalid("no reviews to score: the input is empty")
    for row, review in enumerate(reviews):
        if not isinstance(review, str):
            found = "a missing value" if review is None or (isinstance(review, float) and np.isnan(review)) \
                else f"{type(review).__name__} {review!r}"
            raise invalid(f"review {row}: expected a string, got {found}")
    return reviews


def predict_frame(predictor: Predictor, model_input) -> pd.DataFrame:
    """The pyfunc's answer: probability (P(positive)) and label (probability >= threshold) per review."""
    probs = np.asarray(predictor.probabilities(reviews_from_input(model_input)), dtype=np.float64)
    return pd.DataFrame({"probability": probs, "label": (probs >= predictor.threshold).astype(np.int64)})


# --- using a logged model ---------------------------------------------------------------------

def load(model_uri: str):
    """The pyfunc a run logged, e.g. load(f"runs:/{run_id}/model")."""
    import mlflow.pyfunc
    return mlflow.pyfunc.load_model(model_uri)


def predict_probabilities(pyfunc, reviews) -> np.ndarray:
    """P(positive) of each review, in order."""
    return pyfunc.predict(pd.DataFrame({"review": list(reviews)}))["probability"].to_numpy()
