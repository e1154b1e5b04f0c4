"""An encoder checkpoint named by an MLflow URI: what an mlm run made (pretraining.py), as the
local folder transformers loads.

    local_checkpoint("runs:/<run id>/encoder")   # or models:/NAME/VERSION, models:/NAME@ALIAS
    local_checkpoint("bert-base-uncased")        # anything else is returned as it is

The logged model is downloaded once, by its immutable model id, beside the MLflow store
(<store folder>/pretrained/<model id>/). A run that fine-tunes it reads pretraining.json there:
`check_unseen` refuses validation reviews whose text the pretraining read.
"""

import json
import shutil
from pathlib import Path

from .. import paths
from ..errors import UserError

URI_PREFIXES = ("runs:/", "models:/")
ENCODER_NAME = "encoder"        # the model an mlm run logs: runs:/<id>/encoder
ENCODER_MODEL_TYPE = "imdb-masked-lm-encoder"
TEXT_FILE = "pretraining.json"  # beside its weights: what text it was pretrained on


def is_mlflow_uri(name: str) -> bool:
    return name.startswith(URI_PREFIXES)


def _model_id(uri: str) -> str:
    """The logged model's id behind a runs:/ or models:/ URI (model_uri_problem found it exists)."""
    import re

    from mlflow.tracking import MlflowClient

    from ..model_registry import logged_model

    if match := re.fullmatch(r"runs:/([^/]+)/(.+)", uri):
        return logged_model(*match.groups()).model_id
    name, alias, version = re.fullmatch(r"models:/([^/@]+)(?:@(.+)|/(.+))", uri).groups()
    client = MlflowClient()
    found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    return found.source.removeprefix("models:/")


def local_checkpoint(name: str, flag: str = "--model") -> str:
    """The folder an mlm run's encoder lies in, downloaded once; `name` itself when it is no URI."""
    if not is_mlflow_uri(name):
        return name
    import mlflow

    from ..model_registry import model_uri_problem

    problem = model_uri_problem(name, ENCODER_MODEL_TYPE, "an encoder an mlm run pretrained (make pretrain-minilm)")
    if problem is None and not name.startswith(URI_PREFIXES[0]) and "/" not in name[len("models:/"):] \
            and "@" not in name:
        problem = "name a version or an alias: models:/NAME/VERSION or models:/NAME@ALIAS"
    if problem:
        raise UserError(f"{flag} {name}: {problem}")
    target = paths.store_dir() / "pretrained" / _model_id(name)
    if not target.is_dir():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        print(f"downloading {name} to {target}", flush=True)
        mlflow.artifacts.download_artifacts(name, dst_path=str(partial))
        partial.rename(target)
    found = sorted(target.rglob(TEXT_FILE))
    if not found:
        raise UserError(f"{flag} {name}: {target} holds no {TEXT_FILE}: not an mlm run's encoder")
    return str(found[0].parent)


def pretraining_of(folder: str) -> dict | None:
    """What an mlm run's encoder folder says it was pretrained on (pretraining.json), or None."""
    path = Path(folder) / TEXT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def check_unseen(name: str, pretraining: dict, val_ids, flag: str = "--model") -> None:
    """Refuse a run that would validate on reviews whose text the encoder was pretrained on."""
    seen = set(pretraining["labeled_ids"]) & {str(review_id) for review_id in val_ids}
    if seen:
        limit = f" --limit {pretraining['limit']}" if pretraining.get("limit") else ""
        raise UserError(f"{flag} {name}: it was pretrained on the text of {len(seen)} of this run's validation "
                        f"reviews (it read the training split of --seed {pretraining['seed']} --val-fraction "
                        f"{pretraining['val_fraction']}{limit}); give those flags so validation stays unseen")
