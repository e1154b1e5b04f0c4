"""make bench-serve   (or: python bench/serve.py --help)

The scoring server `make serve` runs, under a bounded burst: for each model,
start it on a free port on 127.0.0.1 (models/serve.py: MLflow's scoring app
behind the request check), wait until it answers, send --reviews test reviews in
requests of --batch-size reviews from --clients concurrent clients, stop it.
Prints, per model: requests, reviews per second over the burst, p50 and p99
request latency, and errors (a non-200 answer, or one with the wrong number
of predictions). It stops by itself: the burst is a fixed number of requests
and every request and the server start have a time limit.

The models: --models URI,URI (runs:/<id>/model, models:/<name>@<alias>), or by
default an embedding network (LSTM) and TF-IDF trained here on --limit
reviews into a temporary MLflow store, which is removed afterwards.
"""

import concurrent.futures
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from imdb_sentiment import data, paths
from imdb_sentiment.config import _default_data_dir, option, parse_config, require
from imdb_sentiment.errors import UserError, run_main

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 60


@dataclasses.dataclass
class ServeBenchConfig:
    models: str | None = option(None, "comma-separated model URIs to serve (default: train an LSTM and TF-IDF "
                                      "on --limit reviews here)")
    reviews: int = option(2000, "reviews sent to each model")
    batch_size: int = option(50, "reviews per request")
    clients: int = option(8, "concurrent clients")
    limit: int = option(2000, "training and test reviews of the models trained here")
    data_dir: str = option(_default_data_dir(), "folder holding Kaggle's files: the test reviews sent")
    start_timeout: int = option(180, "seconds a server may take to answer its first request")

    def __post_init__(self):
        require(self.reviews >= 1, "reviews", "an integer >= 1", self.reviews)
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.clients >= 1, "clients", "an integer >= 1", self.clients)
        require(self.limit >= 10, "limit", "an integer >= 10", self.limit)
        require(self.start_timeout >= 1, "start_timeout", "an integer >= 1", self.start_timeout)
        if self.models is not None:
            require(all(part.strip() for part in self.models.split(",")), "models",
                    "comma-separated model URIs without empty entries", self.models)


def train_models(config: ServeBenchConfig) -> dict[str, str]:
    """label -> runs:/ URI of an LSTM and a TF-IDF model trained on --limit reviews (the active store)."""
    from imdb_sentiment.cli import train

    common = ["--data-dir", config.data_dir, "--limit", str(config.limit)]
    lstm = train("lstm", [*common, "--epochs", "1", "--embeddings", "random", "--max-length", "256",
                          "--no-progress", "--run-name", "bench-serve-lstm"])
    tfidf = train("tfidf", [*common, "--run-name", "bench-serve-tfidf"])
    return {"lstm": f"runs:/{lstm.run_id}/model", "tfidf": f"runs:/{tfidf.run_id}/model"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(model_uri: str, tracking_uri: str, log_path: Path, timeout: float):
    """(process, base URL) of models/serve.py serving model_uri, once it answers /ping."""
    port = free_port()
    with open(log_path, "w") as log:  # its own session: the server's workers stop with it
        server = subprocess.Popen([sys.executable, str(REPO / "models" / "serve.py"), "--model", model_uri,
                                   "--port", str(port), "--tracking-uri", tracking_uri],
                                  cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=2):
                return server, base
        except OSError:
            exited = server.poll()
            if exited is not None or time.monotonic() > deadline:
                stop_server(server)
                tail = log_path.read_text().strip().splitlines()[-1:] or ["no output"]
                how = f"exited with code {exited}" if exited is not None else f"did not start in {timeout:.0f}s"
                raise UserError(f"the server for {model_uri} {how}: {tail[0]}")
            time.sleep(0.5)


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def post(base: str, reviews: list[str]) -> tuple[float, bool]:
    """(seconds, answered correctly) of one /invocations request."""
    body = json.dumps({"dataframe_split": {"columns": ["review"], "data": [[r] for r in reviews]}}).encode()
    request = urllib.request.Request(f"{base}/invocations", body, {"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            answer = json.loads(response.read())
        ok = len(answer.get("predictions", [])) == len(reviews)
    except (OSError, ValueError):  # HTTPError and timeouts are OSErrors
        ok = False
    return time.perf_counter() - started, ok


def burst(base: str, reviews: list[str], batch_size: int, clients: int) -> dict:
    batches = [reviews[i:i + batch_size] for i in range(0, len(reviews), batch_size)]
    post(base, batches[0])  # warm-up: the first request pays for lazy imports
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda batch: post(base, batch), batches))
    seconds = time.perf_counter() - started
    latencies = np.array([latency for latency, _ in results]) * 1000
    return {"requests": len(batches), "reviews_per_s": len(reviews) / seconds,
            "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
            "errors": sum(not ok for _, ok in results)}


def main(argv=None):
    config = parse_config(ServeBenchConfig, argv, prog="bench/serve.py", description=__doc__.split("\n\n")[1])
    test = data.load_test(config.data_dir)["review"].tolist()
    reviews = [test[i % len(test)] for i in range(config.reviews)]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        scratch = Path(scratch)
        if config.models:
            tracking_uri = paths.default_tracking_uri()
            models = {uri.strip(): uri.strip() for uri in config.models.split(",")}
        else:
            tracking_uri = f"sqlite:///{scratch / 'mlflow.db'}"
            os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
            models = train_models(config)
        print(f"{config.reviews} reviews a model, {config.batch_size} a request, {config.clients} clients",
              flush=True)
        rows = []
        for label, uri in models.items():
            server, base = start_server(uri, tracking_uri, scratch / f"server-{len(rows)}.log", config.start_timeout)
            try:
                rows.append({"model": label, **burst(base, reviews, config.batch_size, config.clients)})
            finally:
                stop_server(server)
    print(f"{'model':<28} {'requests':>8} {'reviews/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for row in rows:
        print(f"{row['model'][:28]:<28} {row['requests']:>8} {row['reviews_per_s']:>10.1f} {row['p50_ms']:>8.1f} "
              f"{row['p99_ms']:>8.1f} {row['errors']:>6}", flush=True)
    return rows


if __name__ == "__main__":
    run_main(main)
