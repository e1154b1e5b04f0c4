"""New reviews through a logged model: the mlflow.pyfunc every run logs (serving.py).

    uri, named = inference.model_uri(run_id="0f3a...")          # or model="models:/imdb-lstm@champion"
    pyfunc = inference.load_model(uri, named)
    probs = serving.predict_probabilities(pyfunc, inference.read_reviews(path)["review"])

One code path whatever the family. What a user can get wrong (an unknown run,
a run that logged no model, an unknown registered model or alias, a model that
does not take reviews, an input file that is not one) is a one-line UserError,
found before anything loads.
"""

import os
from pathlib import Path

import pandas as pd

from . import data, model_registry, paths, serving
from .errors import UserError


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


def model_uri(run_id: str | None = None, model: str | None = None) -> tuple[str, str]:
    """(model URI, the flag that named it, for messages) from a run id or a model URI, one of them."""
    if bool(run_id) == bool(model):
        raise UserError("name the model by one of --run-id ID or --model URI (runs:/<id>/model, "
                        "models:/<name>@<alias>, models:/<name>/<version>)")
    if run_id:
        return f"runs:/{run_id}/{serving.MODEL_NAME}", f"--run-id {run_id}"
    return model, f"--model {model}"


def load_model(uri: str, named: str | None = None, tracking_uri: str | None = None):
    """The review model at `uri` as an mlflow.pyfunc; a one-line UserError (starting with `named`,
    default the URI) when there is none there."""
    import mlflow
    from mlflow.exceptions import MlflowException

    named = named or uri
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri or paths.default_tracking_uri())
    problem = model_registry.model_uri_problem(uri, serving.MODEL_TYPE)
    if problem:
        raise UserError(f"{named}: {problem}")
    try:
        pyfunc = serving.load(uri)
    except (MlflowException, OSError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{named}: cannot load a model there ({first_line})") from None
    inputs = pyfunc.metadata.get_input_schema()
    names = inputs.input_names() if inputs is not None else []
    if names != ["review"]:
        raise UserError(f"{named}: not a review model (its input is {names or 'not described'}, "
                        "expected a `review` column)")
    return pyfunc

