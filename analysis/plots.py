"""python analysis/plots.py [--tracking-uri URI] [--experiment NAME] [--select best|latest] [--out-dir analysis/plots] [--no-log]

Plots from the runs in MLflow (`make plots`), as PNG files in --out-dir:
- learning_curves_<table>.png: per reference table, the accuracy and loss per
  epoch of the run that stands for each family (the same run as in the tables);
- pareto.png: test accuracy against training time of every finished model
  run (ensembles and distilled students too, at the training time of all the
  runs they were made from), with the Pareto front (nothing
  else is both faster and more accurate): the short list of what is worth
  training; pareto_prediction.png: the same against prediction time per 1,000
  reviews (predict_seconds_per_1k): what is worth serving;
- study_<name>.png: per search study, each trial's value with the best so far,
  and every trial's validation accuracy per epoch (pruned trials stop early).
  Also logged to the study's parent run under `analysis/`, unless --no-log.
"""

import argparse
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from imdb_sentiment.store import (Run, RunStore, add_store_arguments, latest, model_runs,
                            open_store, study_parents, trials_of)
from analysis._rows import OTHER_TITLE, load_reference, model_tables, total_train_seconds
from imdb_sentiment.families import FAMILIES, TABLES
from imdb_sentiment.errors import ArgumentParser, run_main

CURVE_METRICS = ("train_acc", "val_acc", "train_loss", "val_loss")
# How a trial's validation curve is drawn, by its state: (legend label, line style).
TRIAL_STYLES = {"FINISHED": ("finished", dict(color="C0", linestyle="-")),
                "PRUNED": ("pruned", dict(color="grey", linestyle="--")),
                "FAIL": ("failed", dict(color="C3", linestyle=":")),
                "RUNNING": ("running", dict(color="C1", linestyle="-."))}


def pareto_front(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The (seconds, accuracy, label) points no other point beats on both, fastest first.

    A point is dominated when another is at least as fast and at least as
    accurate, and strictly better in one of the two.
    """
    front, best_acc = [], float("-inf")
    # Fastest first; at equal time the most accurate first, so its twin is dominated.
    for seconds, acc, label in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best_acc:
            front.append((seconds, acc, label))
            best_acc = acc
    return front


def learning_curve_figure(title: str, curves: dict[str, dict[str, list[tuple[int, float]]]]):
    """Accuracy and loss per epoch; one colour per family, validation solid, training dashed."""
    figure, (acc_axes, loss_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, (family, metrics) in enumerate(curves.items()):
        color = f"C{index % 10}"
        for axes, kind in ((acc_axes, "acc"), (loss_axes, "loss")):
            for split, style in (("val", "-"), ("train", "--")):
                history = metrics.get(f"{split}_{kind}", [])
                if history:
                    steps, values = zip(*history)
                    axes.plot(steps, values, style, color=color, marker=".",
                              label=f"{family} ({split})")
    for axes, name in ((acc_axes, "accuracy"), (loss_axes, "loss")):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        axes.grid(alpha=0.3)
    acc_axes.legend(fontsize="small")
    figure.suptitle(f"Learning curves: {title}")
    figure.tight_layout()
    return figure


# x axes of the Pareto plots: metric -> (file name, what it measures). Ensembles and students
# are points like any run (the "Ensembles and distilled students" table).
PARETO_AXES = {"train_seconds": ("pareto.png", "training time"),  # an ensemble's or student's: total_train_seconds
               "predict_seconds_per_1k": ("pareto_prediction.png", "prediction time per 1,000 reviews")}


def pareto_figure(points_by_table: dict[str, list[tuple[float, float, str]]], what: str = "training time"):
    """Every finished model run as a point; the front as a line with family labels."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for title, points in points_by_table.items():
        axes.scatter([p[0] for p in points], [p[1] for p in points], label=title, alpha=0.7)
    front = pareto_front([p for points in points_by_table.values() for p in points])
    if front:
        axes.step([p[0] for p in front], [p[1] for p in front], where="post", color="black",
                  linewidth=1, label="Pareto front")
        for seconds, acc, label in front:
            axes.annotate(label, (seconds, acc), textcoords="offset points", xytext=(4, 4),
                          fontsize="small")
    axes.set_xscale("log")  # from seconds (tf-idf) to hours (encoders)
    axes.set_xlabel(f"{what} (s, log scale)")
    axes.set_ylabel("test accuracy")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="small")
    axes.set_title(f"Test accuracy against {what}")
    figure.tight_layout()
    return figure, front


def trial_value(trial: Run) -> float | None:
    return trial.metrics.get("best_val_acc")


def study_figure(study: str, parent: Run, trials: list[Run],
                 histories: dict[str, list[tuple[int, float]]]):
    """Left: each finished trial's value and the best so far. Right: val_acc per epoch per
    trial, drawn by state (pruned trials stop early)."""
    figure, (value_axes, curve_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    ordered = sorted(trials, key=lambda t: int(t.tags.get("trial_number", 0)))
    scored = [(int(t.tags.get("trial_number", 0)), trial_value(t)) for t in ordered
              if t.finished and trial_value(t) is not None]
    if scored:
        numbers, values = zip(*scored)
        best_so_far = [max(values[:i + 1]) for i in range(len(values))]
        value_axes.scatter(numbers, values, label="finished trial")
        value_axes.step(numbers, best_so_far, where="post", color="black", label="best so far")
        value_axes.legend(fontsize="small")
    value_axes.set_xlabel("trial")
    value_axes.set_ylabel("best validation accuracy")
    states = set()
    for trial in ordered:
        history = histories.get(trial.run_id, [])
        if history:
            steps, values = zip(*history)
            state = trial.trial_state if trial.trial_state in TRIAL_STYLES else "RUNNING"
            states.add(state)
            curve_axes.plot(steps, values, marker=".", alpha=0.7, **TRIAL_STYLES[state][1])
    for label, style in (TRIAL_STYLES[s] for s in TRIAL_STYLES if s in states):
        curve_axes.plot([], [], label=label, **style)  # one legend entry per state drawn
    if states:
        curve_axes.legend(fontsize="small")
    curve_axes.set_xlabel("epoch")
    curve_axes.set_ylabel("validation accuracy")
    for axes in (value_axes, curve_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
    counts = ", ".join(f"{int(parent.metrics[key])} {word}" for key, word in (
        ("n_trials_finished", "finished"), ("n_trials_pruned", "pruned"),
        ("n_trials_failed", "failed")) if key in parent.metrics)
    figure.suptitle(f"Study {study}" + (f" ({counts})" if counts else ""))
    figure.tight_layout()
    return figure


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def save(figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {path}")
    return path


def make_plots(store: RunStore, select: str, out_dir: Path, log: bool) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = store.runs()
    references = load_reference()
    written = []

    for table in model_tables(runs, references, select):
        curves = {row["family"]: {m: store.metric_history(row["run_id"], m) for m in CURVE_METRICS}
                  for row in table.rows if row["run_id"]}
        curves = {family: m for family, m in curves.items() if any(m.values())}
        if curves:
            written.append(save(learning_curve_figure(table.title, curves),
                                out_dir / f"learning_curves_{table.key}.png"))

    table_of = {name: TABLES[family.table] for name, family in FAMILIES.items() if family.table in TABLES}
    finished = model_runs(runs)
    by_id = {run.run_id: run for run in finished}
    for metric, (name, what) in PARETO_AXES.items():
        points: dict[str, list] = {}
        for run in finished:
            x = total_train_seconds(run, by_id) if metric == "train_seconds" else run.metrics.get(metric)
            if "test_acc" in run.metrics and x:  # a log axis: no zero
                points.setdefault(table_of.get(run.family, OTHER_TITLE), []).append(
                    (x, run.metrics["test_acc"], run.family))
        if points:
            figure, front = pareto_figure(points, what)
            written.append(save(figure, out_dir / name))
            print(f"Pareto front of test accuracy and {what} (nothing else is both faster and more accurate):")
            for seconds, acc, family in front:
                print(f"  {family}: test accuracy {acc:.4f}, {seconds:.2f} s")

    for study, parents in study_parents(runs).items():
        trials = trials_of(runs, study)
        if not trials:
            continue
        histories = {t.run_id: store.metric_history(t.run_id, "val_acc") for t in trials}
        parent = latest(parents)  # the plot covers all trials, so it goes to the newest parent
        path = save(study_figure(study, parent, trials, histories),
                    out_dir / f"study_{safe_name(study)}.png")
        written.append(path)
        if log:
            store.log_file(parent.run_id, path)
            print(f"logged {path.name} to run {parent.run_id}")
    return written


def main(argv=None):
    parser = ArgumentParser(prog="analysis/plots.py", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_arguments(parser)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "plots",
                        help="where the PNG files go (default: analysis/plots/)")
    parser.add_argument("--no-log", dest="log", action="store_false",
                        help="do not log the study plots to their parent runs in MLflow")
    args = parser.parse_args(argv)
    store = open_store(args)
    if not make_plots(store, args.select, args.out_dir, args.log):
        print("no finished runs with metrics to plot yet")


if __name__ == "__main__":
    run_main(main)
