"""python models/register.py --family lstm [--name imdb-lstm] [--alias champion]

Registers the model of a family's best finished run in the MLflow Model
Registry (`make register FAMILY=lstm [NAME=imdb-lstm]`) and points the alias
`champion` at it, so that `make serve MODEL=models:/imdb-lstm@champion` and
`make predict MODEL=...` follow the best run as it changes. The best run is
the one the results tables pick (imdb_sentiment/store.py select_run: full-data runs
first, then the best validation accuracy), among the finished runs that
logged a model; running it again registers nothing new when the best run is
already a version, and only moves the alias when a better run has come.
Works on the SQLite store and on a tracking server ($MLFLOW_TRACKING_URI).
"""

import argparse
import re

from imdb_sentiment.errors import ArgumentParser, UserError, run_main


def main(argv=None):
    parser = ArgumentParser(prog="models/register.py", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", required=True, help="the family tag of the runs (lstm, tfidf, bert-lora, ...)")
    parser.add_argument("--name", default=None, help="registered model name (default: imdb-<family>)")
    parser.add_argument("--alias", default="champion", help="alias pointed at the version (default: champion)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI or the repo's mlflow/mlflow.db)")
    parser.add_argument("--experiment", default=None,
                        help="experiment name (default: $MLFLOW_EXPERIMENT_NAME or imdb-sentiment)")
    args = parser.parse_args(argv)

    import mlflow

    from imdb_sentiment.store import RunStore, model_runs, select_run
    from imdb_sentiment import model_registry, paths, serving
    from imdb_sentiment.families import resolve

    resolve(args.family)  # an unknown family: one line listing the known ones
    name = args.name or f"imdb-{args.family}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):  # as the train scripts' --register
        raise UserError(f"--name {name!r}: expected letters, digits, '.', '_' and '-' such as imdb-lstm")
    store = RunStore(args.tracking_uri or paths.default_tracking_uri(), args.experiment or paths.experiment_name())
    mlflow.set_tracking_uri(store.tracking_uri)
    finished = [run for run in model_runs(store.runs()) if run.family == args.family]
    if not finished:
        raise UserError(f"--family {args.family}: no finished run in experiment {store.experiment_name!r}; "
                        f"train one first (make train-{args.family})")
    with_model = model_registry.runs_with_model(store.experiment_id, serving.MODEL_TYPE)
    candidates = [run for run in finished if run.run_id in with_model]
    if not candidates:
        raise UserError(f"--family {args.family}: none of its {len(finished)} finished runs logged a model that "
                        "takes reviews (trained with --no-save-model, or before models were logged so); "
                        "train one again")
    best = select_run(candidates, "best")
    print(f"best {args.family} run: {best.run_id} ({best.name}), best_val_acc "
          f"{best.metrics.get('best_val_acc', float('nan')):.4f}, test_acc {best.metrics.get('test_acc', float('nan')):.4f}",
          flush=True)
    model_registry.register(best.run_id, name, args.alias)


if __name__ == "__main__":
    run_main(main)
