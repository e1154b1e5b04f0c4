"""python models/predict.py (--run-id ID | --model URI) --input FILE --out FILE.csv

Score new reviews with a logged model (`make predict RUN=ID INPUT=reviews.txt
OUT=predictions.csv`, or `MODEL=models:/imdb-lstm@champion` instead of RUN).
Any family works: every run logs its model as an mlflow.pyfunc that takes
raw reviews. The input is a .txt file with one review a line, or a
Kaggle-format .tsv with the columns id and review (testData.tsv). The output
is Kaggle's submission format, `id,sentiment` with the probability of
positive, so `make score` reads it; an existing output file is never
overwritten.
"""

import argparse
import os
from pathlib import Path

from imdb_sentiment.errors import ArgumentParser, UserError, run_main


def main(argv=None):
    parser = ArgumentParser(prog="models/predict.py", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-id", default=None, help="MLflow run id of a finished training run")
    parser.add_argument("--model", default=None,
                        help="or a model URI: runs:/<id>/model, models:/<name>@<alias>, models:/<name>/<version>")
    parser.add_argument("--input", required=True, type=Path, help="reviews: .txt (one a line) or .tsv (id, review)")
    parser.add_argument("--out", required=True, type=Path, help="CSV to write (id,sentiment); must not exist")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default: cpu)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI or the repo's mlflow/mlflow.db)")
    args = parser.parse_args(argv)
    from imdb_sentiment import inference, metrics, serving

    uri, named = inference.model_uri(args.run_id, args.model)
    if args.out.exists():
        raise UserError(f"--out {args.out}: the file exists; name a new file (nothing is overwritten)")
    if not args.out.parent.is_dir():
        raise UserError(f"--out {args.out}: folder {args.out.parent} does not exist")

    reviews = inference.read_reviews(args.input)
    from imdb_sentiment.device import detect_device
    detect_device(args.device)  # a device that is not there: one line now, not a traceback from the model
    os.environ[serving.DEVICE_VARIABLE] = args.device  # the pyfunc runs where this says
    pyfunc = inference.load_model(uri, named, args.tracking_uri)
    probs = serving.predict_probabilities(pyfunc, reviews["review"])
    metrics.write_submission(args.out, reviews["id"], probs)
    print(f"wrote {args.out}: {len(probs)} reviews, {int((probs >= 0.5).sum())} predicted positive")


if __name__ == "__main__":
    run_main(main)
