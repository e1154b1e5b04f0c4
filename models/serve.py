"""python models/serve.py --model URI [--port 5050] [--workers 1]

Serves a logged review model over HTTP on 127.0.0.1 (`make serve
MODEL=models:/imdb-lstm@champion [PORT=5050]`, or MODEL=runs:/<id>/model):
MLflow's scoring app (what `mlflow models serve --env-manager local` runs, in
this environment) behind a check of each request's reviews
(imdb_sentiment/serve_app.py). POST reviews to /invocations in any of MLflow's
JSON formats, e.g.

    curl -s http://127.0.0.1:5050/invocations -H 'Content-Type: application/json' \\
         -d '{"dataframe_split": {"columns": ["review"], "data": [["A wonderful film."]]}}'
    {"predictions": [{"probability": 0.93, "label": 1}]}

`label` is 1 when the probability reaches the threshold that was best on the
run's validation reviews. A request without a `review` column, with no reviews,
or with a review that is not a string (a number, a null) gets a 400 with one
line saying what was expected, in every JSON format MLflow accepts. An unknown
run, model, version or alias is a one-line error before the server starts.
"""

import argparse
import os
import sys

from imdb_sentiment import paths
from imdb_sentiment.paths import HOST, check_port_free
from imdb_sentiment.errors import ArgumentParser, UserError, run_main

DEFAULT_PORT = 5050  # the UI takes 5000


def server_command(port: int, workers: int = 1) -> list[str]:
    """uvicorn running MLflow's scoring app behind the request check (imdb_sentiment/serve_app.py),
    as `mlflow models serve --env-manager local` runs MLflow's app alone."""
    return [sys.executable, "-m", "uvicorn", "--factory", "imdb_sentiment.serve_app:make_app", "--host", HOST,
            "--port", str(port), "--workers", str(workers), "--log-level", "warning"]


def main(argv=None):
    parser = ArgumentParser(prog="models/serve.py", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="runs:/<id>/model, models:/<name>@<alias> or models:/<name>/<version>")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)),
                        help=f"port on {HOST} (default: $PORT or {DEFAULT_PORT})")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default: 1)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI or the repo's mlflow/mlflow.db)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        raise UserError(f"--workers: expected an integer >= 1, got {args.workers}")
    check_port_free(args.port, retry="make serve MODEL=... PORT={port}")
    tracking_uri = args.tracking_uri or paths.default_tracking_uri()

    import mlflow

    from imdb_sentiment import model_registry, serving

    mlflow.set_tracking_uri(tracking_uri)
    problem = model_registry.model_uri_problem(args.model, serving.MODEL_TYPE)
    if problem:
        raise UserError(f"--model {args.model}: {problem}")
    print(f"serving {args.model} on http://{HOST}:{args.port}/invocations  (store: {tracking_uri}; "
          "Ctrl-C to stop)", flush=True)
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.pyfunc import scoring_server

    # The model's files, fetched once here; each server worker loads them from this folder.
    os.environ[scoring_server._SERVER_MODEL_PATH] = mlflow.artifacts.download_artifacts(artifact_uri=args.model)
    command = server_command(args.port, args.workers)
    os.execv(command[0], command)  # signals reach the server itself, not a wrapper


if __name__ == "__main__":
    run_main(main)
