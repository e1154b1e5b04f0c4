"""make bench-predict   (or: python bench/predict_speed.py --help)

How fast a fine-tuned encoder scores reviews on this CPU, every way measured side by side in one
process on the same reviews (imdb_sentiment/encoders/scoring.py): fp32 in batches of like length
(how the logged model scores today, the reference), fp32 in the reviews' own order, bf16 autocast
(where the CPU has it natively), torch's dynamic int8, ONNX Runtime fp32 and ONNX Runtime with
dynamic int8 weights. For each: reviews/s, the speed-up over the reference, the largest
|P(positive) - the reference's| over the reviews, how many labels flip, and accuracy.

The model is a finished encoder run's logged model (--run-id; default: the best finished run of
the encoder families that logged a fully fine-tuned model). Preparing a way (quantising,
exporting) is not timed; each way first scores --warm-up reviews. Logs one MLflow run (tag
benchmark=predict_speed) with the table as metrics `<way>_reviews_per_s`, ... and a CSV.
"""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from imdb_sentiment import data, paths, serving, store, tracking
from imdb_sentiment.config import RunConfig, flatten, option, parse_config, require
from imdb_sentiment.errors import UserError, run_main
from imdb_sentiment.metrics import accuracy


@dataclass
class BenchConfig(RunConfig):
    run_id: str | None = option(None, "MLflow run id of a fine-tuned encoder run (default: the best finished one)")
    reviews: int = option(1000, "test reviews each way scores (a stratified sample of the test file)")
    max_length: int | None = option(None, "tokens per review (default: the run's own)")
    batch_size: int = option(64, "reviews per batch")
    warm_up: int = option(64, "reviews each way scores before it is timed")
    ways: str = option(",".join(("fp32", "fp32-unsorted", "bf16", "int8", "onnx", "onnx-int8")),
                       "comma-separated ways to measure (fp32, the reference, always runs)")

    def __post_init__(self):
        super().__post_init__()
        require(self.reviews >= 10, "reviews", "an integer >= 10", self.reviews)
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.max_length is None or self.max_length >= 8, "max_length", "an integer >= 8", self.max_length)


def encoder_run(config: BenchConfig):
    """The run measured: --run-id, else the best finished run that logged a fully fine-tuned encoder."""
    if config.run_id:
        run = store.finished_run(config.run_id, "--run-id", "a finished run has a logged model")
    else:
        runs = [run for run in store.RunStore(paths.default_tracking_uri(), config.experiment or paths.experiment_name()).runs()
                if run.finished and run.tags.get("method") == "none" and run.tags.get("model_type")]
        run = store.select_run(runs)
        if run is None:
            raise UserError("--run-id: no finished fully fine-tuned encoder run in the MLflow store to default to; "
                            "train one (make train-minilm) or give --run-id RUN_ID")
    return run


def load_encoder(run_id: str, scratch: Path):
    """(model, tokenizer, settings) of the run's logged encoder model."""
    import json

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = serving.download_model(run_id, scratch)
    settings = json.loads(next(folder.rglob("settings.json")).read_text())
    if settings.get("kind") != "encoder":
        raise UserError(f"--run-id {run_id}: its model is a {settings.get('kind')} model, not an encoder")
    encoder = next(folder.rglob("config.json")).parent
    if (encoder / "adapter_config.json").exists():
        raise UserError(f"--run-id {run_id}: a PEFT adapter; measure a fully fine-tuned run")
    return (AutoModelForSequenceClassification.from_pretrained(encoder).eval(),
            AutoTokenizer.from_pretrained(encoder), settings)


def main(argv=None):
    from imdb_sentiment.device import use_all_cores
    from imdb_sentiment.encoders.scoring import WAYS, Scorer, unavailable
    from imdb_sentiment.encoders.tokens import tokenize

    config = parse_config(BenchConfig, argv, prog="bench/predict_speed.py", description=__doc__)
    ways = ["fp32"] + [way.strip() for way in config.ways.split(",") if way.strip() and way.strip() != "fp32"]
    unknown = [way for way in ways if way not in WAYS]
    if unknown:
        raise UserError(f"--ways: unknown {', '.join(unknown)}; known: {', '.join(WAYS)}")
    tracking.configure(None, config.experiment)  # the store runs:/ URIs are read from
    tracking.quiet_mlflow()  # no download bars
    use_all_cores()
    run = encoder_run(config)
    test = data.stratified_sample(data.load_test(config.data_dir), config.reviews, config.seed)
    labels = test["label"].to_numpy()
    with tempfile.TemporaryDirectory(prefix="imdb-bench-") as scratch:
        model, tokenizer, settings = load_encoder(run.run_id, Path(scratch))
        length = config.max_length or int(settings["max_length"])
        ids = tokenize(tokenizer, list(test["review"]), length, settings["truncation"])
        print(f"run {run.run_id[:8]} ({run.family}, {run.tags.get('model')}): {len(ids)} test reviews, "
              f"<= {length} tokens (mean {np.mean([len(one) for one in ids]):.0f}), batches of {config.batch_size}",
              flush=True)
        rows, reference = [], None
        for way in ways:
            why = unavailable(way)
            if why:
                print(f"{way}: skipped ({why})", flush=True)
                rows.append({"way": way, "note": why})
                continue
            scorer = Scorer(model, way, tokenizer.pad_token_id)
            scorer.probabilities(ids[:config.warm_up], config.batch_size)
            started = time.perf_counter()
            probs = scorer.probabilities(ids, config.batch_size)
            seconds = time.perf_counter() - started
            reference = probs if reference is None else reference
            row = {"way": way, "seconds": seconds, "reviews_per_s": len(ids) / seconds,
                   "max_abs_dp": float(np.max(np.abs(probs - reference))),
                   "flipped": int(np.sum((probs >= 0.5) != (reference >= 0.5))),
                   "accuracy": accuracy(labels, probs), "note": ""}
            rows.append(row)
            print(f"{way}: {row['reviews_per_s']:.1f} reviews/s, max |dp| {row['max_abs_dp']:.2e}, "
                  f"{row['flipped']} labels flipped, accuracy {row['accuracy']:.4f}", flush=True)
            del scorer
    table = pd.DataFrame(rows)
    base = table.loc[table["way"] == "fp32", "reviews_per_s"].iloc[0]
    table["speedup"] = table["reviews_per_s"] / base
    print(f"\n{'way':15}{'reviews/s':>10}{'speed-up':>9}{'max |dp|':>10}{'flipped':>8}{'accuracy':>9}")
    for row in table.itertuples():
        if pd.isna(row.reviews_per_s):
            print(f"{row.way:15}  skipped: {row.note}")
        else:
            print(f"{row.way:15}{row.reviews_per_s:10.1f}{row.speedup:8.2f}x{row.max_abs_dp:10.1e}{int(row.flipped):8d}"
                  f"{row.accuracy:9.4f}")
    tags = {"benchmark": "predict_speed", "measured_run": run.run_id}
    with tracking.start_run(f"bench-predict-{time.strftime('%Y%m%d-%H%M%S')}", tags,
                            {**flatten(config), **tracking.provenance(), "max_length_used": length},
                            experiment=config.experiment):
        tracking.log_final({f"{row.way}_{key}": getattr(row, key) for row in table.itertuples()
                            for key in ("reviews_per_s", "speedup", "max_abs_dp", "flipped", "accuracy")
                            if not pd.isna(getattr(row, key))})
        with tracking.scratch_dir() as folder:
            path = Path(folder) / "predict_speed.csv"
            table.to_csv(path, index=False)
            tracking.log_file(path)
    return table


if __name__ == "__main__":
    run_main(main)
