"""python analysis/_mlflow_ui.py [--port 5000] [--tracking-uri URI]

Serves the MLflow UI for the project's store on 127.0.0.1 (`make mlflow-ui`,
`make mlflow-ui MLFLOW_PORT=5001`) and prints its address. Only this machine
can reach it: to browse from elsewhere, forward the port (ssh -L 5000:127.0.0.1:5000).
"""

import argparse
import os
import socket
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `analysis` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imdb_sentiment import paths
from imdb_sentiment.errors import UserError, run_main

HOST = "127.0.0.1"
MODEL_TRAINING_VIEW = "workflowType=machine_learning"


def check_port_free(port: int, retry: str = "make mlflow-ui MLFLOW_PORT={port}") -> None:
    """Fail in one line before MLflow would fail in many; `retry` (with {port}) says what to run instead."""
    if not 0 < port < 65536:
        raise UserError(f"port {port} is not a TCP port (1-65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            raise UserError(f"port {port} on {HOST} is in use; pick another, "
                            f"e.g. {retry.format(port=port + 1)}") from None


def server_command(tracking_uri: str, port: int) -> list[str]:
    # One worker: a personal UI on a shared machine needs no more.
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
            "--host", HOST, "--port", str(port), "--workers", "1"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MLFLOW_PORT", 5000)),
                        help="port on 127.0.0.1 (default: $MLFLOW_PORT or 5000)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI or the repo's mlflow/mlflow.db)")
    args = parser.parse_args(argv)
    check_port_free(args.port)
    tracking_uri = args.tracking_uri or paths.default_tracking_uri()
    print(f"MLflow UI: http://{HOST}:{args.port}  (store: {tracking_uri}; Ctrl-C to stop)",
          flush=True)
    # MLflow 3.17's UI opens in its GenAI view whatever the experiment's kind; this link opens the
    # Model training one (runs, models, model registry), which the browser then remembers.
    print(f"model training view: http://{HOST}:{args.port}/#/?{MODEL_TRAINING_VIEW}", flush=True)
    command = server_command(tracking_uri, args.port)
    # The job runner serves MLflow's GenAI features (and starts seven worker
    # processes): nothing this project browses needs it.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # exec: Ctrl-C and signals reach the server itself, not a wrapper.
    os.execv(command[0], command)


if __name__ == "__main__":
    run_main(main)
