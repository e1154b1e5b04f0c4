"""An encoder checkpoint named by an MLflow URI: what an mlm run made (pretraining.py), as the
local folder transformers loads.

    local_checkpoint("runs:/<run id>/encoder")   # or models:/NAME/VERSION, models:/NAME@ALIAS
    local_checkpoint("bert-base-uncased")        # anything else is returned as it is

The logged model is downloaded once, by its immutable model id, beside the MLflow store
(<store folder>/pretrained/<model id>/). A run that fine-tunes it reads pretraining.json there:
`check_unseen` refuses validation reviews whose text the pretraining read.
"""

import json
import re
import shutil
import tempfile
from pathlib import Path

from .. import paths
from ..errors import UserError

URI_PREFIXES = ("runs:/", "models:/")
ENCODER_NAME = "encoder"        # the model an mlm run logs: runs:/<id>/encoder
ENCODER_MODEL_TYPE = "imdb-masked-lm-encoder"
TEXT_FILE = "pretraining.json"  # beside its weights: what text it was pretrained on


def is_mlflow_uri(name: str) -> bool:
    return name.startswith(URI_PREFIXES)


# The URIs that name an mlm run's encoder: a run's, a registered version's or alias's, or the logged
# model's own id (what a LoRA adapter records as its base: immutable, where an alias moves).
URI_FORMS = {"run": re.compile(r"runs:/([0-9a-f]{32})/([^/]+)"),
             "version": re.compile(r"models:/([^/@]+)/([0-9]+)"),
             "alias": re.compile(r"models:/([^/@]+)@([^/@]+)"),
             "model id": re.compile(r"models:/(m-[0-9a-f]+)")}
FORMS_HELP = "runs:/<run id>/encoder, models:/NAME/VERSION, models:/NAME@ALIAS or models:/m-<model id>"


def logged_model_id(uri: str, flag: str = "--model") -> str:
    """The id of the logged model `uri` names (checked: an mlm run's encoder); else one line naming
    the flag and what is wrong. Reads the store paths.default_tracking_uri() names."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ..model_registry import logged_model, model_uri_problem

    mlflow.set_tracking_uri(paths.default_tracking_uri())  # the lab's store, not MLflow's default
    form = next((name for name, pattern in URI_FORMS.items() if pattern.fullmatch(uri)), None)
    if form is None:
        raise UserError(f"{flag} {uri}: expected {FORMS_HELP}")
    client = MlflowClient()
    try:
        if form == "model id":
            found = client.get_logged_model(uri.removeprefix("models:/"))
        else:
            problem = model_uri_problem(uri, ENCODER_MODEL_TYPE,
                                        "an encoder an mlm run pretrained (make pretrain-minilm)")
            if problem:
                raise UserError(f"{flag} {uri}: {problem}")
            if form == "run":
                found = logged_model(*URI_FORMS["run"].fullmatch(uri).groups())
            else:
                name, which = URI_FORMS[form].fullmatch(uri).groups()
                version = client.get_model_version_by_alias(name, which) if form == "alias" else \
                    client.get_model_version(name, which)
                found = client.get_logged_model(version.source.removeprefix("models:/"))
    except MlflowException as error:
        raise UserError(f"{flag} {uri}: not found in {paths.default_tracking_uri()} "
                        f"({str(error).splitlines()[0]})") from None
    if found is None or found.model_type != ENCODER_MODEL_TYPE:
        raise UserError(f"{flag} {uri}: not an encoder an mlm run pretrained (make pretrain-minilm)")
    return found.model_id


def pinned(name: str, flag: str = "--model") -> str:
    """An mlm run's encoder by its logged model's id (models:/m-<id>), whatever URI named it: what a
    run records, so that a moved alias never changes what it was trained or is served on; `name`
    itself when it is no URI."""
    return f"models:/{logged_model_id(name, flag)}" if is_mlflow_uri(name) else name


def source_run(name: str) -> str:
    """The run that logged the encoder `name` (a URI) names; "" for anything else."""
    if not is_mlflow_uri(name):
        return ""
    from mlflow.tracking import MlflowClient

    return MlflowClient(paths.default_tracking_uri()).get_logged_model(logged_model_id(name)).source_run_id or ""


def local_checkpoint(name: str, flag: str = "--model") -> str:
    """The folder an mlm run's encoder lies in, downloaded once by its model id; `name` itself when
    it is no URI."""
    if not is_mlflow_uri(name):
        return name
    import mlflow

    model_id = logged_model_id(name, flag)
    target = paths.store_dir() / "pretrained" / model_id
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        # A folder of this process's own, renamed once complete: processes that download at once
        # (torchrun ranks, study workers) never write into one another's.
        partial = Path(tempfile.mkdtemp(prefix=f"{model_id}.", dir=target.parent))
        print(f"downloading {name} to {target}", flush=True)
        mlflow.artifacts.download_artifacts(f"models:/{model_id}", dst_path=str(partial))
        try:
            partial.rename(target)
        except OSError:  # another process finished first: its copy is the same model
            shutil.rmtree(partial, ignore_errors=True)
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
