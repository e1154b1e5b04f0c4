"""New reviews through a logged run's model.

A finished run holds what it needs to predict again, whatever the family:
- an encoder run (tagged `method`): the `model` folder save_model wrote
  (weights or PEFT adapter, tokenizer, max_length and truncation);
- an embedding run: the pickled torch model, `vocab.json`, and its
  max_length / truncation params;
- the TF-IDF run: the sklearn pipeline, which takes raw text.

load_predictor(run_id) turns that back into reviews -> P(positive), the
same numbers the run computed for its own test reviews.
"""

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from . import data, text, tracking
from .errors import UserError

Predictor = Callable[[list[str]], np.ndarray]


def read_reviews(path: Path) -> pd.DataFrame:
    """The reviews to score (columns id, review): a .txt file with one review a line (ids are
    the line numbers) or a Kaggle-format .tsv with the columns id and review (testData.tsv)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    if path.suffix == ".tsv":
        rows = data.parse_kaggle_tsv(path.read_bytes(), "unlabeled", str(path)).rows
        return rows[["id", "review"]]
    if path.suffix != ".txt":
        raise UserError(f"{path}: expected a .txt file (one review a line) or a .tsv file with the "
                        "columns id and review (as Kaggle's testData.tsv)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: bytes that are not UTF-8 at offset {error.start}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise UserError(f"{path}:{number}: empty line; expected one review a line")
    if not lines:
        raise UserError(f"{path}: no reviews; expected one review a line")
    return pd.DataFrame({"id": [str(n) for n in range(1, len(lines) + 1)], "review": lines})


def load_predictor(run_id: str, device: str = "cpu", tracking_uri: str | None = None) -> Predictor:
    """reviews -> probabilities of positive, from the model that run logged."""
    run = tracking.get_run(run_id, tracking_uri)
    if run is None:
        raise UserError(f"--run-id {run_id}: no such run in the MLflow store")
    if run.info.status != "FINISHED":
        raise UserError(f"--run-id {run_id}: the run is {run.info.status}; only a finished run "
                        "has a trained and tested model")
    tags, params = run.data.tags, run.data.params
    if "method" in tags:
        return _encoder_predictor(run_id, device)
    if tags.get("family") == "tfidf":
        return _tfidf_predictor(run_id)
    if "vocab_size" in params:
        return _embedding_predictor(run_id, params, device)
    raise UserError(f"--run-id {run_id}: not a model run (family {tags.get('family')!r}): "
                    "pick a run of a train/ script")


def _missing_model(run_id: str, what: str) -> UserError:
    return UserError(f"--run-id {run_id}: the run logged no {what} to predict with")


def _encoder_predictor(run_id: str, device: str) -> Predictor:
    from .encoders.saving import load_for_prediction, predict_reviews

    with tempfile.TemporaryDirectory(prefix="imdb-predict-") as scratch:
        folder = tracking.download_artifact(run_id, "model", Path(scratch))
        if folder is None:
            raise _missing_model(run_id, "model folder (was it trained with --no-save-model?)")
        model, tokenizer, settings = load_for_prediction(folder, device)

    def predict(reviews):
        return predict_reviews(model, tokenizer, reviews, settings["max_length"], settings["truncation"],
                               device=device)
    return predict


def _tfidf_predictor(run_id: str) -> Predictor:
    pipeline = tracking.load_logged_model(run_id, "sklearn")
    if pipeline is None:
        raise _missing_model(run_id, "sklearn pipeline")
    return lambda reviews: pipeline.predict_proba(list(reviews))[:, 1]


def _embedding_predictor(run_id: str, params: dict, device: str) -> Predictor:
    from .batching import TokenIds, make_loader
    from .models import forward_batch
    from .training import predict as predict_loader

    model = tracking.load_logged_model(run_id, "pytorch")
    with tempfile.TemporaryDirectory(prefix="imdb-predict-") as scratch:
        vocab_file = tracking.download_artifact(run_id, "vocab.json", Path(scratch))
        if model is None or vocab_file is None:
            raise _missing_model(run_id, "torch model and vocabulary")
        vocab = text.Vocab.from_json(vocab_file.read_text())
    model = model.to(device)
    max_length, truncation = int(params["max_length"]), params["truncation"]
    batch_size = int(params.get("eval_batch_size", 256))

    def predict(reviews):
        sequences = [text.truncate(vocab.encode(tokens), max_length, truncation)
                     for tokens in text.reviews_to_tokens(reviews)]
        loader = make_loader(TokenIds(sequences, np.full(len(sequences), -1)), batch_size, False, 0)
        probs, _ = predict_loader(model, loader, forward_batch, torch.device(device))
        return probs
    return predict
