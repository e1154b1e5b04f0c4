"""python analysis/_mlflow_ui.py [--port 5000] [--tracking-uri URI] [--experiment NAME]

Serves the MLflow UI for the project's store on 127.0.0.1 (`make mlflow-ui`,
`make mlflow-ui MLFLOW_PORT=5001`) and prints its address and that of the
experiment's training runs. Only this machine
can reach it: to browse from elsewhere, forward the port (ssh -L 5000:127.0.0.1:5000).
"""

import os
import sys

from imdb_sentiment import paths
from imdb_sentiment.paths import HOST, check_port_free
from imdb_sentiment.errors import ArgumentParser, run_main

MODEL_TRAINING_VIEW = "workflowType=machine_learning"


def server_command(tracking_uri: str, port: int) -> list[str]:
    # One worker: a personal UI on a shared machine needs no more.
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
            "--host", HOST, "--port", str(port), "--workers", "1"]


def training_runs_url(base: str, tracking_uri: str, experiment: str) -> str:
    """Where the UI shows the experiment's table of training runs, in the Model training view; the
    view's home page when the store has no such experiment yet. Only a SQLite store that exists is
    read here: a server that is down or a file not there yet is the UI's to report, not this link's."""
    from imdb_sentiment import tracking

    database = paths.sqlite_file(tracking_uri)
    if database is None or not database.is_file():
        return f"{base}/#/?{MODEL_TRAINING_VIEW}"
    found = tracking.open_store(tracking_uri).get_experiment_by_name(experiment)
    where = f"experiments/{found.experiment_id}/runs" if found is not None else ""
    return f"{base}/#/{where}?{MODEL_TRAINING_VIEW}"


def main(argv=None):
    parser = ArgumentParser(prog="analysis/_mlflow_ui.py", description=__doc__.split("\n\n")[1])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MLFLOW_PORT", 5000)),
                        help="port on 127.0.0.1 (default: $MLFLOW_PORT or 5000)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI or the repo's mlflow/mlflow.db)")
    parser.add_argument("--experiment", default=None,
                        help="the experiment whose runs the second line links (default: $MLFLOW_EXPERIMENT_NAME "
                             "or imdb-sentiment)")
    args = parser.parse_args(argv)
    check_port_free(args.port)
    tracking_uri = args.tracking_uri or paths.default_tracking_uri()
    experiment = args.experiment or paths.experiment_name()
    base = f"http://{HOST}:{args.port}"
    print(f"MLflow UI: {base}  (store: {tracking_uri}; Ctrl-C to stop)", flush=True)
    # MLflow 3.17's UI opens in its GenAI view whatever the experiment's kind; this link opens the
    # experiment's runs in the Model training one, which the browser then remembers.
    print(f"training runs of experiment {experiment}: {training_runs_url(base, tracking_uri, experiment)}",
          flush=True)
    command = server_command(tracking_uri, args.port)
    # The job runner serves MLflow's GenAI features (and starts seven worker
    # processes): nothing this project browses needs it.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # exec: Ctrl-C and signals reach the server itself, not a wrapper.
    os.execv(command[0], command)


if __name__ == "__main__":
    run_main(main)
