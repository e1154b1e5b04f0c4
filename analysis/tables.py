"""python analysis/tables.py [--tracking-uri URI] [--experiment NAME] [--select best|latest] [--out-dir analysis] [--readme README.md]

Rebuilds the reference project's accuracy tables from the runs in MLflow
(`make tables`): one row per model family, the best finished run by
validation accuracy (or, with --select latest, the newest finished run).
FAILED/KILLED runs never count; a family without a finished run keeps its row
and says so. Families that no reference table lists go to "Other models",
so no run vanishes. An encoder table sets the methods run on one checkpoint
(full fine-tuning, LoRA, R-Drop, SCL, ...) side by side. A study table
summarises every search study.

Writes analysis/results.md, analysis/results_<table>.csv,
analysis/results_encoder_methods.csv, analysis/studies.csv
and, with --readme, rewrites the README between the results markers.
"""

import argparse
import csv
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

if __package__ in (None, ""):  # run as a script: make the `analysis` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import _format as fmt
from analysis._runs import (Run, RunStore, add_store_arguments, is_model_run, latest, model_runs,
                            open_store, select_run, study_parents)
from imdb_sentiment.errors import UserError, run_main

REFERENCE_CSV = Path(__file__).with_name("reference.csv")
# Table key (reference.csv's `table` column) -> heading; also the order of the tables.
TABLE_TITLES = {
    "word_vectors": "Neural networks on word vectors",
    "encoders": "Pretrained encoders",
    "deberta_peft": "DeBERTa PEFT",
    "unsloth_rdrop_scl": "Unsloth, R-Drop and SCL",
}
OTHER_TABLE = "other"
OTHER_TITLE = "Other models (no reference row)"
README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
DEFAULT_UI_URL = "http://127.0.0.1:5000"

MODEL_COLUMNS = ["family", "model", "run_id", "test_acc", "test_auc", "best_val_acc",
                 "best_epoch", "train_seconds", "device", "trainable_params",
                 "reference_acc_low", "reference_acc", "diff", "note"]
# The encoder runs side by side: one row per checkpoint x method x regulariser x data size.
METHOD_COLUMNS = ["model", "method", "quantize", "regulariser", "limit", "tokens_per_review",
                  "family", "run_id", "test_acc", "test_auc", "best_val_acc", "best_epoch",
                  "train_seconds", "device", "trainable_params", "vs_plain"]
STUDY_COLUMNS = ["study", "family", "trials_finished", "trials_pruned", "trials_failed",
                 "device_hours", "best_value", "best_params", "best_run_id", "best_run_url",
                 "note"]


@dataclass(frozen=True)
class Reference:
    table: str
    family: str
    checkpoint: str        # what `make train-<family>` loads by default; "" for word-vector families
    acc_low: float | None  # set when the reference reports a range
    acc: float | None      # what the difference is taken against (a range's high end)
    note: str


@dataclass
class Table:
    key: str
    title: str
    rows: list[dict]


def load_reference(path: Path = REFERENCE_CSV) -> list[Reference]:
    """The reference project's reported accuracies, checked so a typo fails loudly."""
    def number(text, where):
        if not text.strip():
            return None
        try:
            return float(text)
        except ValueError:
            raise UserError(f"{where}: {text!r} is not a number") from None

    references, seen = [], set()
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            if None in row or None in row.values():  # more or fewer cells than the header names
                raise UserError(f"{where}: expected {len(reader.fieldnames)} fields "
                                f"({','.join(reader.fieldnames)}); quote a note that holds a comma")
            if row["table"] not in TABLE_TITLES:
                raise UserError(f"{where}: unknown table {row['table']!r}; "
                                f"known: {', '.join(TABLE_TITLES)}")
            if row["family"] in seen:
                raise UserError(f"{where}: family {row['family']!r} listed twice")
            seen.add(row["family"])
            references.append(Reference(row["table"], row["family"], row["checkpoint"],
                                        number(row["reference_acc_low"], where),
                                        number(row["reference_acc"], where), row["note"]))
    return references


def int_metric(run: Run, key: str) -> int | None:
    """Counts (epochs, parameters, trials) are logged as MLflow floats."""
    value = run.metrics.get(key)
    return None if value is None else int(value)


def status_counts(runs: list[Run]) -> str:
    """'1 FAILED, 2 KILLED': why there is no finished run."""
    counts = Counter(run.status for run in runs)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def run_results(run: Run) -> dict:
    """What every results table shows of a run."""
    metrics = run.metrics
    return dict(run_id=run.run_id, test_acc=metrics.get("test_acc"), test_auc=metrics.get("test_auc"),
                best_val_acc=metrics.get("best_val_acc"), best_epoch=int_metric(run, "best_epoch"),
                train_seconds=metrics.get("train_seconds"),
                device=run.tags.get("device") or run.params.get("device", ""),
                trainable_params=int_metric(run, "trainable_params"))


def best_val_cell(row: dict) -> str:
    """'0.9134 (2)': the best validation accuracy and its epoch."""
    cell = fmt.fixed(row["best_val_acc"])
    return cell if row["best_epoch"] is None else f"{cell} ({row['best_epoch']})"


def model_row(family: str, run: Run | None, reference: Reference | None,
              unfinished: list[Run]) -> dict:
    ref_acc = reference.acc if reference else None
    notes = [reference.note] if reference and reference.note else []
    row = dict.fromkeys(MODEL_COLUMNS)
    row.update(family=family, reference_acc_low=reference.acc_low if reference else None,
               reference_acc=ref_acc)
    if run is None:
        why = f" ({status_counts(unfinished)})" if unfinished else ""
        row["note"] = "; ".join([f"no finished run{why}"] + notes)
        return row

    test_acc = run.metrics.get("test_acc")
    model = run.tags.get("model", "")
    if reference and reference.checkpoint and model != reference.checkpoint:
        # e.g. all-MiniLM-L6-v2 in the bert row: the diff then compares two different models
        notes.insert(0, f"checkpoint {short_model_name(model)}, not the family's {reference.checkpoint}")
    row.update(model=model, **run_results(run),
               # Rounded: accuracy over 25,000 reviews has 5 decimals; float noise beyond is not data.
               diff=(round(test_acc - ref_acc, 5)
                     if test_acc is not None and ref_acc is not None else None),
               note="; ".join(notes))
    if not run.full_data:
        row["note"] = "; ".join([f"quick run: --limit {run.params['limit']}"] + notes)
    return row


def model_tables(runs: list[Run], references: list[Reference], select: str) -> list[Table]:
    """The four reference tables (plus "other" when needed), one row per family."""
    finished = model_runs(runs)
    by_family: dict[str, list[Run]] = {}
    for run in finished:
        by_family.setdefault(run.family, []).append(run)
    # Runs that never finished, to say why a family has no result.
    unfinished: dict[str, list[Run]] = {}
    for run in runs:
        if is_model_run(run) and not run.finished:
            unfinished.setdefault(run.family, []).append(run)

    tables = []
    for key, title in TABLE_TITLES.items():
        rows = [model_row(ref.family, select_run(by_family.get(ref.family, []), select), ref,
                          unfinished.get(ref.family, []))
                for ref in references if ref.table == key]
        tables.append(Table(key, title, rows))
    listed = {ref.family for ref in references}
    others = sorted(family for family in by_family if family not in listed)
    if others:
        tables.append(Table(OTHER_TABLE, OTHER_TITLE,
                            [model_row(f, select_run(by_family[f], select), None, []) for f in others]))
    return tables


def method_rows(runs: list[Run], select: str) -> list[dict]:
    """Encoder runs (those tagged with a `method`) grouped by what differs between them,
    the chosen run of each group: full fine-tuning, LoRA, R-Drop and SCL on one
    checkpoint compare here, whichever family row each run stands for. Runs on a
    --limit slice form their own groups, so a slice never hides behind the full data."""
    groups: dict[tuple, list[Run]] = {}
    for run in model_runs(runs):
        if "method" not in run.tags:
            continue
        limit = None if run.full_data else run.params["limit"]
        key = (run.tags.get("model", ""), limit, run.tags["method"], run.tags.get("quantize", "none"),
               run.tags.get("regulariser", "none"))
        groups.setdefault(key, []).append(run)
    rows = []
    # Checkpoint by checkpoint, full data first, then the larger slices.
    for key in sorted(groups, key=lambda k: (k[0], k[1] is not None, -int(k[1] or 0), k[2:])):
        model, limit, method, quantize, regulariser = key
        run = select_run(groups[key], select)
        row = dict.fromkeys(METHOD_COLUMNS)
        row.update(model=model, method=method, quantize=quantize, regulariser=regulariser, limit=limit,
                   tokens_per_review=run.params.get("tokens_per_review"), family=run.family,
                   **run_results(run))
        rows.append(row)
    # vs_plain: test accuracy minus that of plain full fine-tuning (no PEFT, no
    # regulariser) on the same checkpoint and the same data.
    def is_plain(row):
        return (row["method"], row["quantize"], row["regulariser"]) == ("none", "none", "none")

    plain = {(row["model"], row["limit"]): row["test_acc"] for row in rows if is_plain(row)}
    for row in rows:
        baseline = plain.get((row["model"], row["limit"]))
        if not is_plain(row) and not fmt.is_missing(baseline) and not fmt.is_missing(row["test_acc"]):
            row["vs_plain"] = round(row["test_acc"] - baseline, 5)
    return rows


def method_markdown(rows: list[dict]) -> str:
    if not rows:
        return "No encoder runs in this experiment yet."
    header = ["Model", "Data", "Method", "Regulariser", "Tokens", "Test acc", "Test AUC",
              "Best val acc (epoch)", "Training time", "Device", "Trainable params", "Family",
              "vs plain"]
    cells = []
    for row in rows:
        method = row["method"] if row["quantize"] == "none" else f"{row['method']} ({row['quantize']})"
        best_val = best_val_cell(row)
        cells.append([f"`{short_model_name(row['model'])}`",
                      "full" if row["limit"] is None else f"--limit {row['limit']}",
                      method, row["regulariser"], row["tokens_per_review"] or "",
                      fmt.fixed(row["test_acc"]), fmt.fixed(row["test_auc"]), best_val,
                      fmt.duration(row["train_seconds"]), row["device"] or "",
                      fmt.count(row["trainable_params"]), row["family"],
                      fmt.fixed(row["vs_plain"], 3, signed=True)])
    return fmt.markdown_table(header, cells)


def study_rows(runs: list[Run], run_url) -> list[dict]:
    """One row per study, from its parent run, which holds the study's totals.

    Unlike model rows, an unfinished parent still counts: a resumed study reuses
    its parent run, and an interrupted one has spent real device-hours. The
    note says when the study did not end normally.
    """
    rows = []
    for study, parents in study_parents(runs).items():
        parent = latest(parents)
        # A resumed study with a new best updates the best.* tags; params, once
        # logged, cannot change, so they may hold an older best.
        best = {k: v for source in (parent.params, parent.tags) for k, v in source.items()
                if k.startswith("best.")}
        best_params = sorted((k.removeprefix("best."), v) for k, v in best.items())
        best_child = parent.tags.get("best_child_run_id")
        row = dict.fromkeys(STUDY_COLUMNS)
        row.update(study=study, family=parent.tags.get("family", ""),
                   trials_finished=int_metric(parent, "n_trials_finished"),
                   trials_pruned=int_metric(parent, "n_trials_pruned"),
                   trials_failed=int_metric(parent, "n_trials_failed"),
                   device_hours=parent.metrics.get("device_hours_spent"),
                   best_value=parent.metrics.get("best_value"),
                   best_params=", ".join(f"{k}={v}" for k, v in best_params),
                   best_run_id=best_child or None,
                   best_run_url=run_url(best_child) if best_child else None,
                   note="" if parent.finished else f"study run {parent.status}")
        rows.append(row)
    return rows


def short_model_name(model: str) -> str:
    """A local checkpoint path shows as its folder name: the README must not carry
    one machine's paths. Hub names such as `microsoft/deberta-v3-base` stay whole."""
    if not model.startswith(("/", "~", ".")):
        return model
    path = PurePosixPath(model)
    # packaged checkpoints often sit in a folder named just "model"
    return path.parent.name if path.name == "model" and path.parent.name else path.name


def model_markdown(table: Table) -> str:
    header = ["Family", "Model", "Test acc", "Test AUC", "Best val acc (epoch)",
              "Training time", "Device", "Trainable params", "Reference", "Diff", "Note"]
    cells = []
    for row in table.rows:
        if row["run_id"] is None:
            model, best_val = "—", ""  # the note says why
        else:
            model = f"`{short_model_name(row['model'])}`" if row["model"] else ""
            best_val = best_val_cell(row)
        reference = fmt.fixed(row["reference_acc"], 3)
        if row["reference_acc_low"] is not None:
            reference = f"{fmt.fixed(row['reference_acc_low'], 3)}–{reference}"
        cells.append([row["family"], model, fmt.fixed(row["test_acc"]), fmt.fixed(row["test_auc"]),
                      best_val, fmt.duration(row["train_seconds"]), row["device"] or "",
                      fmt.count(row["trainable_params"]), reference,
                      fmt.fixed(row["diff"], 3, signed=True), row["note"] or ""])
    return fmt.markdown_table(header, cells)


def study_markdown(rows: list[dict]) -> str:
    if not rows:
        return "No search studies in this experiment yet."
    header = ["Study", "Family", "Finished", "Pruned", "Failed", "Device-hours",
              "Best value", "Best params", "Best run", "Note"]
    cells = []
    for row in rows:
        link = f"[{row['best_run_id'][:8]}]({row['best_run_url']})" if row["best_run_id"] else ""
        cells.append([row["study"], row["family"] or "",
                      *("" if row[k] is None else str(row[k])
                        for k in ("trials_finished", "trials_pruned", "trials_failed")),
                      fmt.fixed(row["device_hours"], 2), fmt.fixed(row["best_value"]),
                      row["best_params"] or "", link, row["note"] or ""])
    return fmt.markdown_table(header, cells)


def benchmark_markdown(runs: list[Run]) -> str:
    """The newest finished run of each benchmark (runs tagged `benchmark`), its numbers as logged."""
    newest: dict[str, Run] = {}
    for run in runs:
        name = run.tags.get("benchmark")
        if name and run.finished and (name not in newest or run.start_time > newest[name].start_time):
            newest[name] = run
    if not newest:
        return "No benchmark runs in this experiment yet (`make bench-lstm`, `make bench-encoder`)."
    cells = [[name, ", ".join(f"{key} {fmt.fixed(value, 3)}" for key, value in sorted(run.metrics.items())),
              run.run_id[:8]] for name, run in sorted(newest.items())]
    return fmt.markdown_table(["Benchmark", "Numbers (newest finished run)", "Run"], cells)


def render_markdown(tables: list[Table], studies: list[dict], experiment: str, select: str,
                    benchmarks: str | None = None, methods: list[dict] | None = None) -> str:
    """The results section: the same text goes to results.md and the README."""
    rule = ("the finished run with the best validation accuracy" if select == "best"
            else "the newest finished run")
    parts = [f"Generated by `python analysis/tables.py` from MLflow experiment `{experiment}`: "
             f"one row per model family, {rule}. Diff = test accuracy minus the reference "
             "project's reported accuracy."]
    for table in tables:
        parts += [f"### {table.title}", model_markdown(table)]
    if methods is not None:
        parts += ["### Encoders by checkpoint and method",
                  "Every encoder run group (checkpoint, data, method, regulariser), its "
                  f"{'best' if select == 'best' else 'newest'} finished run: the methods compared "
                  "on one backbone. vs plain = test accuracy minus that of plain full fine-tuning "
                  "(method none, no regulariser) on the same checkpoint and data.",
                  method_markdown(methods)]
    parts += ["### Hyperparameter searches", study_markdown(studies)]
    if benchmarks is not None:
        parts += ["### Benchmarks", benchmarks]
    return "\n\n".join(parts) + "\n"


def replace_between_markers(text: str, content: str, where: str) -> str:
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < 0 or end < start:
        raise UserError(f"{where}: no results section to rewrite; add the lines "
                        f"{README_START} and {README_END} (in that order) where the tables go")
    return text[:start + len(README_START)] + "\n" + content + text[end:]


def write_outputs(tables: list[Table], studies: list[dict], markdown: str, out_dir: Path,
                  methods: list[dict]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "results.md"]
    written[0].write_text("# Results\n\n" + markdown, encoding="utf-8")
    for table in tables:
        path = out_dir / f"results_{table.key}.csv"
        fmt.write_csv(path, MODEL_COLUMNS, table.rows)
        written.append(path)
    fmt.write_csv(out_dir / "results_encoder_methods.csv", METHOD_COLUMNS, methods)
    written.append(out_dir / "results_encoder_methods.csv")
    fmt.write_csv(out_dir / "studies.csv", STUDY_COLUMNS, studies)
    written.append(out_dir / "studies.csv")
    return written


def build(store: RunStore, select: str, ui_url: str) -> tuple[list[Table], list[dict], list[dict]]:
    runs = store.runs()
    tables = model_tables(runs, load_reference(), select)
    studies = study_rows(runs, lambda run_id: store.run_url(ui_url, run_id))
    return tables, studies, method_rows(runs, select)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_store_arguments(parser)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent,
                        help="where results.md and the CSV files go (default: analysis/)")
    parser.add_argument("--readme", type=Path, default=None,
                        help="also rewrite this file between the results markers")
    parser.add_argument("--ui-url", default=DEFAULT_UI_URL,
                        help=f"MLflow UI address for the run links (default: {DEFAULT_UI_URL})")
    args = parser.parse_args(argv)

    # Check the README first: a missing marker should not cost a store read.
    readme_text = None
    if args.readme is not None:
        if not args.readme.is_file():
            raise UserError(f"{args.readme}: file not found")
        readme_text = args.readme.read_text(encoding="utf-8")
        replace_between_markers(readme_text, "", str(args.readme))

    store = open_store(args)
    tables, studies, methods = build(store, args.select, args.ui_url)
    markdown = render_markdown(tables, studies, store.experiment_name, args.select,
                               benchmark_markdown(store.runs()), methods)
    for path in write_outputs(tables, studies, markdown, args.out_dir, methods):
        print(f"wrote {path}")
    if readme_text is not None:
        args.readme.write_text(replace_between_markers(readme_text, markdown, str(args.readme)),
                               encoding="utf-8")
        print(f"updated {args.readme}")


if __name__ == "__main__":
    run_main(main)
