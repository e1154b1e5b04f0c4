"""Logged models and the MLflow Model Registry: which runs logged a review model, what a model
URI points at, and registering a run's model under a name and alias.

    register_model(run_id, "imdb-lstm", alias="champion")

Writing a model is serving.py (each kind's writer beside its loader); reading runs is store.py.
"""

from .errors import UserError

# The name every family's review model is logged under (runs:/<id>/model), and its model_type:
# what tells this project's review models from other MLflow models (serving.py writes them).
MODEL_NAME = "model"
MODEL_TYPE = "imdb-review-sentiment"


def logged_model(run_id: str, name: str = "model"):
    """The LoggedModel a run logged under `name`, or None. (MLflow 3 keeps a model beside its run,
    not among the run's artifacts; `runs:/<id>/<name>` resolves to it.)"""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    outputs = client.get_run(run_id).outputs
    for output in (outputs.model_outputs if outputs else []):
        model = client.get_logged_model(output.model_id)
        if model.name == name:
            return model
    return None


def register_model(run_id: str, name: str, alias: str | None = None, model_name: str = MODEL_NAME):
    """The run's logged model `model_name` as a version of registered model `name` (a new version, or the one
    that already holds this run's model), with `alias` pointing at it when given. Works on a
    SQLite store and on a tracking server alike. Returns the ModelVersion."""
    import mlflow
    from mlflow.tracking import MlflowClient

    model = logged_model(run_id, model_name)
    if model is None:
        raise ValueError(f"run {run_id} logged no model {model_name!r} to register")
    client = MlflowClient()
    held = [version for version in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
            if version.source == model.model_uri]
    version = held[0] if held else mlflow.register_model(model.model_uri, name)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return version


def model_uri_problem(uri: str, model_type: str, expected: str = "one that takes reviews") -> str | None:
    """What stops `uri` from naming a finished run's model of `model_type` (`expected` says what that
    is), in a few words (no such run, a run that logged no model, an unknown registered model,
    version or alias); None when nothing does, or the URI is of a kind (a folder, s3://) only
    loading it can check."""
    import re

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if match := re.fullmatch(r"runs:/([^/]+)/(.+)", uri):
        run_id, name = match.groups()
        try:
            run = client.get_run(run_id)
        except MlflowException:
            return "no such run in the MLflow store"
        if run.info.status != "FINISHED":
            return f"the run is {run.info.status}; only a finished run has a trained and tested model"
        model = logged_model(run_id, name)
        if model is None:
            return f"the run logged no model {name!r} to predict with (trained with --no-save-model?)"
        if model.model_type != model_type:
            return (f"the run logged a model of another kind ({model.model_type or 'an older format'}), "
                    f"not {expected}")
        return None
    match = re.fullmatch(r"models:/([^/@]+)(?:@(.+)|/(.+))", uri)
    if match is None:
        return None
    name, alias, version = match.groups()
    try:
        client.get_registered_model(name)
    except MlflowException:
        known = sorted(model.name for model in client.search_registered_models())
        return f"no registered model {name!r} (registered: {', '.join(known) or 'none'})"
    if alias is not None:
        try:
            found = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            aliases = sorted(client.get_registered_model(name).aliases)
            return (f"registered model {name!r} has no alias {alias!r} "
                    f"(aliases: {', '.join(aliases) or 'none'}; make register sets champion)")
    elif version.isdigit():
        try:
            found = client.get_model_version(name, version)
        except MlflowException:
            versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
            return f"registered model {name!r} has no version {version} (versions: " \
                   f"{', '.join(map(str, versions)) or 'none'})"
    else:
        return None
    if match := re.fullmatch(r"models:/(m-[0-9a-f]+)", found.source or ""):
        try:
            kind = client.get_logged_model(match.group(1)).model_type
        except MlflowException:
            return None
        if kind != model_type:
            return f"version {found.version} is a model of another kind ({kind or 'an older format'}), " \
                   f"not {expected}"
    return None


def runs_with_model(experiment_id: str, model_type: str, name: str = "model") -> set[str]:
    """Ids of the experiment's runs that logged a model `name` of `model_type` (one search, paged)."""
    from mlflow.tracking import MlflowClient

    client, found, token = MlflowClient(), set(), None
    while True:
        page = client.search_logged_models([experiment_id], filter_string=f"model_type = '{model_type}' "
                                           f"AND name = '{name}'", max_results=1000, page_token=token)
        found.update(model.source_run_id for model in page if model.source_run_id)
        token = page.token
        if not token:
            return found


def has_review_model(run_id: str) -> bool:
    """Whether the run logged one of this project's review models."""
    model = logged_model(run_id, MODEL_NAME)
    return model is not None and model.model_type == MODEL_TYPE


def register(run_id: str, name: str, alias: str | None = None, model_name: str = MODEL_NAME,
             model_type: str = MODEL_TYPE) -> str:
    """Register the model `model_name` (a review model by default) a finished run logged as a
    version of `name` (the version that already holds it, if any), point `alias` at it when given,
    say so; returns its models:/ URI."""
    model = logged_model(run_id, model_name)
    if model is None or model.model_type != model_type:
        what = "no model" if model is None else f"a model of another kind ({model.model_type or 'an older format'})"
        raise UserError(f"run {run_id} logged {what}: nothing to register as {name!r} "
                        "(train it again without --no-save-model)")
    version = register_model(run_id, name, alias, model_name)
    uri = f"models:/{name}/{version.version}"
    print(f"registered runs:/{run_id}/{model_name} as {uri}" + (f" (alias {alias}: models:/{name}@{alias})"
                                                                 if alias else ""), flush=True)
    return uri
