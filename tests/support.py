"""What the tests share besides fixtures: running scripts and make targets as a user
would, the real data, tiny Kaggle files, and MLflow stores of known runs.

The stores are written straight through MLflow's API, following the project's
logging contract (tags, final metrics, per-epoch metrics) without running any
training code, so the analysis tests stay fast and independent of the trainers.
"""

import collections
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
START = 1_700_000_000_000  # a fixed clock (ms): which run is "latest" must not depend on timing


def find_real_data() -> Path | None:
    """Kaggle's files: $IMDB_SHARED_DATA, ../shared/data/..., or data/ filled by `make data`."""
    candidates = [os.environ.get("IMDB_SHARED_DATA"),
                  REPO.parent / "shared" / "data" / "word2vec-nlp-tutorial",
                  REPO / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "labeledTrainData.tsv.zip").exists() or \
                candidate and (Path(candidate) / "labeledTrainData.tsv").exists():
            return Path(candidate)
    return None


POSITIVE = ["A wonderful, moving film. <br /><br />The acting is superb and I loved every minute!",
            "Great story, great cast: a true classic that I will watch again.",
            "Brilliant and funny; the best movie of the year, highly recommended."]
NEGATIVE = ["Boring and badly acted. <br />I want my two hours back.",
            "The worst film I have seen: a dull plot and awful dialogue.",
            "Terrible. Stupid script, poor effects, a waste of time."]


def write_kaggle_files(folder: Path, n: int = 60) -> Path:
    """Small files in Kaggle's own format: n labelled, n test, n unlabelled reviews."""
    folder.mkdir(parents=True, exist_ok=True)
    labeled, test, unlabeled = ["id\tsentiment\treview"], ["id\treview"], ["id\treview"]
    for i in range(n):
        positive = i % 2 == 0
        pool = POSITIVE if positive else NEGATIVE
        review = pool[i % 3] + f" Review number {i}."
        rating = 8 + i % 3 if positive else 1 + i % 4
        labeled.append(f'"{i}_{rating}"\t{int(positive)}\t"{review}"')
        test.append(f'"{1000 + i}_{rating}"\t"{review} \\"quoted\\""')
        # Not a copy of a labelled review: data.unlabelled_reviews drops those, as Kaggle's file holds some.
        unlabeled.append(f'"{5000 + i}_0"\t"{pool[i % 3]} Review number {5000 + i}."')
    for name, lines in (("labeledTrainData.tsv", labeled), ("testData.tsv", test),
                        ("unlabeledTrainData.tsv", unlabeled)):
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def run_script(args, env=None, timeout=900, check=True):
    """Run a repo script or make target as a user would; returns CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(args, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}\nstdout:\n{result.stdout[-4000:]}\n"
                             f"stderr:\n{result.stderr[-4000:]}")
    return result


def finished_run(uri: str, run_name: str, experiment: str = "test"):
    """(client, run) of the one run named run_name in the store at uri."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} in {uri}"
    runs = client.search_runs([found.experiment_id], f"attributes.run_name = '{run_name}'")
    assert len(runs) == 1, f"expected one run named {run_name}, found {len(runs)}"
    return client, runs[0]


def read_submission(client, run_id: str, folder: Path) -> list[list[str]]:
    import csv

    path = Path(client.download_artifacts(run_id, "submission.csv", str(folder)))
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def new_store(directory: Path, experiment: str = "imdb-sentiment"):
    """A fresh SQLite store in `directory`: (tracking URI, client, experiment id)."""
    from mlflow.tracking import MlflowClient

    directory.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(
        experiment, artifact_location=(directory / "artifacts").as_uri())
    return uri, client, experiment_id


def log_run(client, experiment_id: str, minute: int, *, status: str = "FINISHED",
            tags: dict | None = None, params: dict | None = None, metrics: dict | None = None,
            curves: dict | None = None, name: str | None = None) -> str:
    """One run started `minute` minutes after START; `curves` maps a metric to its per-epoch values."""
    from mlflow.entities import Metric, Param

    start = START + minute * 60_000
    run = client.create_run(experiment_id, start_time=start, run_name=name,
                             tags={k: str(v) for k, v in (tags or {}).items()})
    run_id = run.info.run_id
    logged = [Metric(k, float(v), start, 0) for k, v in (metrics or {}).items()]
    for key, values in (curves or {}).items():
        logged += [Metric(key, float(v), start + epoch, epoch)
                   for epoch, v in enumerate(values, start=1)]
    client.log_batch(run_id, metrics=logged,
                     params=[Param(k, str(v)) for k, v in (params or {}).items()])
    client.set_terminated(run_id, status=status, end_time=start + 30_000)
    return run_id


def run_make(target: str, *variables: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`make TARGET VAR=value ...` in the repo, as a user runs it."""
    return subprocess.run(["make", "--no-print-directory", target, *variables], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


# --- tiny encoders, built offline from configs (their dimensions: see tiny_configs) ---

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_vocab(folder: Path, reviews, size: int = 600) -> Path:
    """A WordPiece vocabulary: specials, single characters (so any word can be spelled), common words."""
    words = collections.Counter(w for r in reviews for w in re.findall(r"[a-z]+|[^\sa-z]", r.lower()))
    chars = sorted({c for w in words for c in w})
    pieces = chars + [f"##{c}" for c in chars if c.isalnum()]
    common = [w for w, _ in words.most_common(size) if w not in pieces]
    path = folder / "vocab.txt"
    path.write_text("\n".join(SPECIALS + pieces + common) + "\n")
    return path


# Every linear layer's input and output width a multiple of 64: on a CPU with
# avx512_bf16, bitsandbytes repacks 4-bit weights at evaluation in blocks of 64
# input features, and a narrower layer fails there ("shape '[32, 0]' is invalid").
HIDDEN, INTERMEDIATE = 64, 128


def tiny_configs(vocab_size: int) -> dict:
    from transformers import (BertConfig, DebertaV2Config, DistilBertConfig, ModernBertConfig,
                              RobertaConfig)
    small = dict(vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=INTERMEDIATE, pad_token_id=0)
    return {
        "bert": BertConfig(max_position_embeddings=512, **small),
        "roberta": RobertaConfig(max_position_embeddings=514, bos_token_id=2, eos_token_id=3, **small),
        "deberta": DebertaV2Config(max_position_embeddings=512, relative_attention=True,
                                   pos_att_type=["p2c", "c2p"], position_biased_input=False,
                                   pooler_hidden_size=HIDDEN, **small),
        "distilbert": DistilBertConfig(vocab_size=vocab_size, dim=HIDDEN, n_layers=2, n_heads=2,
                                       hidden_dim=INTERMEDIATE, max_position_embeddings=512, pad_token_id=0),
        "modernbert": ModernBertConfig(max_position_embeddings=512, cls_token_id=2, sep_token_id=3,
                                       bos_token_id=2, eos_token_id=3, global_attn_every_n_layers=1,
                                       local_attention=64, **small),
    }


def build_tiny_models(root: Path, data_dir: Path) -> dict[str, Path]:
    """Tiny random models of each architecture, saved with a locally made tokenizer."""
    from transformers import AutoModelForSequenceClassification, BertTokenizerFast

    from imdb_sentiment.data import load_kaggle

    reviews = load_kaggle(data_dir, "unlabeled").rows["review"].iloc[:300]
    root.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(str(make_vocab(root, reviews)), do_lower_case=True)
    folders = {}
    for name, config in tiny_configs(len(tokenizer)).items():
        config.num_labels = 2
        model = AutoModelForSequenceClassification.from_config(config)
        folder = root / name
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        folders[name] = folder
    return folders


# --- studies and servers ---

TINY_LSTM = ["--epochs", "1", "--hidden-size", "8", "--embedding-dim", "16", "--embeddings", "random",
             "--batch-size", "16"]


def check_budget_records(trials, budget: float) -> None:
    """No trial started that the budget could not cover, as the check before it saw it."""
    for trial in trials:
        if "committed_device_hours" in trial.user_attrs:
            planned = trial.user_attrs["committed_device_hours"] + trial.user_attrs["estimate_device_hours"]
            assert planned <= budget + 1e-12, (trial.number, planned, budget)


# ------------------------------------------------------------------ resume, budget, MLflow runs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, server: subprocess.Popen, timeout: float = 120) -> str:
    """The body of url once the server that is starting answers it."""
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            assert server.poll() is None, f"the server for {url} exited"
            assert time.time() < deadline, f"nothing answered {url} in {timeout:.0f}s"
            time.sleep(0.5)


def stop_process_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to a server started with start_new_session=True (make and its children), then SIGKILL."""
    import signal

    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def script_main(name: str):
    """The main() of bench/, analysis/ or models/<name>.py, loaded as a user's `python <file>` would."""
    path = next(p for p in (REPO / folder / f"{name}.py" for folder in ("bench", "analysis", "models"))
                if p.exists())
    spec = importlib.util.spec_from_file_location(f"_script_{path.parent.name}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


# --- a toy task the training loop learns in seconds (tests of the loop and of precision) ---

def toy_data(n=32, seed=0):
    """Label 1 reviews contain token 2 ("good"), label 0 contain token 3 ("bad"); lengths vary."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sequences, labels = [], []
    for i in range(n):
        label = i % 2
        seq = rng.integers(4, 20, size=rng.integers(3, 15)).astype(np.int32)
        seq[rng.integers(len(seq))] = 2 if label else 3
        sequences.append(seq)
        labels.append(label)
    return sequences, np.array(labels)


def tiny_lstm(dropout=0.0, seed=0):
    import torch

    from imdb_sentiment.models import RecurrentClassifier, make_embedding

    torch.manual_seed(seed)
    return RecurrentClassifier(make_embedding(None, 20, 8, False), "lstm", 8, 1, dropout, dropout)


def loaders(n=32):
    from imdb_sentiment.batching import TokenIds, make_loader

    sequences, labels = toy_data(n)
    train = make_loader(TokenIds(sequences, labels), 8, True, 0)
    val = make_loader(TokenIds(sequences, labels), 8, False, 0)
    return train, val
