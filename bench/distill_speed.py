"""make bench-distill   (or: python bench/distill_speed.py --help)

What distillation buys at prediction time, measured side by side in one
process: a distilled student (the best finished distill run, or --student
RUN_ID) and its teacher (the run it was distilled from, usually an ensemble)
each score the same test reviews through their logged MLflow models, as a
user's `mlflow.pyfunc.load_model(...).predict` would. Loading is not timed;
each model first scores a few reviews to warm up. Prints seconds, reviews/s,
the ratio and both models' accuracy on those reviews; logs them as one MLflow
run (tag benchmark=distill_speed), which `make tables` shows under the
ensemble-and-student table.
"""

import time
from dataclasses import dataclass

import numpy as np

from imdb_sentiment import combine, data, serving, store, tracking
from imdb_sentiment.config import RunConfig, flatten, option, parse_config, require
from imdb_sentiment.errors import UserError, run_main
from imdb_sentiment.metrics import accuracy

WARM_UP = 20


@dataclass
class BenchConfig(RunConfig):
    student: str | None = option(None, "MLflow run id of a distill run (default: the best finished one)")
    reviews: int = option(25000, "test reviews each model scores (the first N of the test file)")

    def __post_init__(self):
        super().__post_init__()
        require(self.reviews >= WARM_UP, "reviews", f"an integer >= {WARM_UP}", self.reviews)


def student_run(config: BenchConfig) -> combine.Member:
    if config.student is None:
        return combine.default_run("distill", config, "--student",
                                   "run `make train-distill` first, or give --student RUN_ID")
    run = store.get_run(config.student)
    if run is None or run.data.tags.get("family") != "distill":
        raise UserError(f"--student {config.student}: not a distill run in the MLflow store")
    return combine.member_of(store.to_run(run))


def time_scoring(name: str, run_id: str, reviews: list[str]) -> tuple[float, np.ndarray]:
    model = serving.load(f"runs:/{run_id}/{serving.MODEL_NAME}")
    serving.predict_probabilities(model, reviews[:WARM_UP])
    started = time.perf_counter()
    probs = serving.predict_probabilities(model, reviews)
    seconds = time.perf_counter() - started
    print(f"{name} ({run_id[:8]}): {len(reviews)} reviews in {seconds:.1f} s", flush=True)
    return seconds, probs


def main(argv=None):
    config = parse_config(BenchConfig, argv, prog="bench/distill_speed.py", description=__doc__)
    student = student_run(config)
    teacher_id = student.params.get("teacher_run_id")
    if not teacher_id or store.get_run(teacher_id) is None:
        raise UserError(f"--student {student.run_id}: its teacher run {teacher_id} is not in the MLflow store")
    test = data.load_test(config.data_dir).iloc[:config.reviews]
    reviews, labels = list(test["review"]), test["label"].to_numpy()
    student_seconds, student_probs = time_scoring("student", student.run_id, reviews)
    teacher_seconds, teacher_probs = time_scoring("teacher", teacher_id, reviews)
    results = {"reviews": len(reviews), "student_seconds": student_seconds, "teacher_seconds": teacher_seconds,
               "student_reviews_per_s": len(reviews) / student_seconds,
               "teacher_reviews_per_s": len(reviews) / teacher_seconds,
               "speedup": teacher_seconds / student_seconds,
               "student_acc": accuracy(labels, student_probs), "teacher_acc": accuracy(labels, teacher_probs)}
    print(f"\n{'model':10}{'seconds':>10}{'reviews/s':>11}{'acc':>8}")
    for name in ("student", "teacher"):
        print(f"{name:10}{results[f'{name}_seconds']:10.1f}{results[f'{name}_reviews_per_s']:11.1f}"
              f"{results[f'{name}_acc']:8.4f}")
    print(f"the student scores {results['speedup']:.1f}x faster", flush=True)
    tags = {"benchmark": "distill_speed", "student": student.run_id, "teacher": teacher_id}
    params = {**flatten(config), **tracking.provenance(), "student_run_id": student.run_id,
              "teacher_run_id": teacher_id}
    with tracking.start_run(f"bench-distill-{time.strftime('%Y%m%d-%H%M%S')}", tags, params,
                            experiment=config.experiment):
        tracking.log_final(results)
    return results


if __name__ == "__main__":
    run_main(main)
