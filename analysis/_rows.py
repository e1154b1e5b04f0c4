"""The rows of the results tables, from MLflow runs: one row per model family
(imdb_sentiment/families.py), the encoder runs side by side by checkpoint and
method, one row per search study. analysis/tables.py renders them."""

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from analysis import _format as fmt
from imdb_sentiment.store import Run, is_model_run, latest, model_runs, select_run, study_parents
from imdb_sentiment.errors import UserError
from imdb_sentiment.families import FAMILIES, TABLES, model_label

REFERENCE_CSV = Path(__file__).with_name("reference.csv")
OTHER_TABLE = "other"
OTHER_TITLE = "Other models (no reference row)"

MODEL_COLUMNS = ["family", "model", "run_id", "test_acc", "test_auc", "best_val_acc",
                 "best_epoch", "train_seconds", "device", "trainable_params",
                 "reference_acc_low", "reference_acc", "diff", "note"]
# The encoder runs side by side: one row per checkpoint x method x regulariser x data size.
METHOD_COLUMNS = ["model", "method", "quantize", "regulariser", "limit", "tokens_per_review",
                  "family", "run_id", "test_acc", "test_auc", "best_val_acc", "best_epoch",
                  "train_seconds", "device", "trainable_params", "vs_plain"]
# An ensemble beside its members and the student distilled from it.
COMBINED_COLUMNS = ["role", "family", "model", "run_id", "limit", "test_acc", "test_auc", "predict_seconds_per_1k",
                    "train_seconds"]
# A data-parallel run beside its one-process twin (the same global batch).
PARALLEL_COLUMNS = ["family", "limit", "processes", "batch_size", "global_batch", "run_id", "test_acc",
                    "final_train_loss", "train_seconds", "device_hours"]
# What a data-parallel run and its one-process twin share (besides the global batch).
TWIN_PARAMS = ("limit", "seed", "epochs", "val_fraction", "lr", "max_length", "data_sha256")
# What a training precision costs and reaches: one row per family x checkpoint x data x tokens x device
# x precision x processes.
PRECISION_COLUMNS = ["family", "model", "limit", "tokens", "device", "precision", "processes", "run_id",
                     "step_ms", "train_seconds", "test_acc"]
# What a study's parent run logs about its answer (imdb_sentiment/search/mlflow_runs.py): metrics, tags.
STUDY_EVIDENCE_METRICS = ["reference_value", "best_minus_reference", "best_minus_reference_low",
                          "best_minus_reference_high",
                          *(f"confirm_{role}_test_acc_{stat}" for role in ("best", "reference")
                            for stat in ("mean", "sd")),
                          "confirm_difference", "confirm_difference_low", "confirm_difference_high"]
STUDY_EVIDENCE_TAGS = ["verdict", "confirm_verdict", "confirm_seeds"]
STUDY_COLUMNS = ["study", "family", "trials_finished", "trials_pruned", "trials_failed",
                 "device_hours", "best_value", "best_params", "best_test_acc", "best_run_id", "best_run_url",
                 "note", *STUDY_EVIDENCE_METRICS, *STUDY_EVIDENCE_TAGS]


@dataclass(frozen=True)
class Reference:
    """What the reference project reported for a family (analysis/reference.csv)."""
    family: str
    acc_low: float | None  # set when the reference reports a range
    acc: float | None      # what the difference is taken against (a range's high end)
    note: str


@dataclass
class Table:
    key: str
    title: str
    rows: list[dict]


def load_reference(path: Path = REFERENCE_CSV) -> dict[str, Reference]:
    """The reference project's reported accuracies by family, checked so a typo fails loudly."""
    def number(text, where):
        if not text.strip():
            return None
        try:
            return float(text)
        except ValueError:
            raise UserError(f"{where}: {text!r} is not a number") from None

    references = {}
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            if None in row or None in row.values():  # more or fewer cells than the header names
                raise UserError(f"{where}: expected {len(reader.fieldnames)} fields "
                                f"({','.join(reader.fieldnames)}); quote a note that holds a comma")
            if row["family"] not in FAMILIES:
                raise UserError(f"{where}: unknown family {row['family']!r}; "
                                f"known: {', '.join(FAMILIES)} (imdb_sentiment/families.py)")
            if row["family"] in references:
                raise UserError(f"{where}: family {row['family']!r} listed twice")
            references[row["family"]] = Reference(row["family"], number(row["reference_acc_low"], where),
                                                  number(row["reference_acc"], where), row["note"])
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
    if family in FAMILIES and ref_acc is None and not notes:
        notes = ["no reference number"]
    row = dict.fromkeys(MODEL_COLUMNS)
    row.update(family=family, reference_acc_low=reference.acc_low if reference else None,
               reference_acc=ref_acc)
    if run is None:
        why = f" ({status_counts(unfinished)})" if unfinished else ""
        row["note"] = "; ".join([f"no finished run{why}"] + notes)
        return row

    test_acc = run.metrics.get("test_acc")
    model = run.tags.get("model", "")
    checkpoint = FAMILIES[family].checkpoint if family in FAMILIES else ""
    if checkpoint and model != model_label(checkpoint):
        # e.g. all-MiniLM-L6-v2 in the bert row: the diff then compares two different models
        notes.insert(0, f"checkpoint {model_label(model)}, not the family's {checkpoint}")
    row.update(model=model, **run_results(run),
               # Rounded: accuracy over 25,000 reviews has 5 decimals; float noise beyond is not data.
               diff=(round(test_acc - ref_acc, 5)
                     if test_acc is not None and ref_acc is not None else None),
               note="; ".join(notes))
    if not run.full_data:
        row["note"] = "; ".join([f"quick run: --limit {run.params['limit']}"] + notes)
    return row


def model_tables(runs: list[Run], references: dict[str, Reference], select: str) -> list[Table]:
    """The reference tables (plus "other" when needed), one row per family of FAMILIES."""
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
    for key, title in TABLES.items():
        rows = [model_row(name, select_run(by_family.get(name, []), select), references.get(name),
                          unfinished.get(name, []))
                for name, family in FAMILIES.items() if family.table == key]
        tables.append(Table(key, title, rows))
    listed = {name for name, family in FAMILIES.items() if family.table in TABLES}
    others = sorted(family for family in by_family if family not in listed)
    if others:
        tables.append(Table(OTHER_TABLE, OTHER_TITLE,
                            [model_row(f, select_run(by_family[f], select), None, []) for f in others]))
    return tables


def method_rows(runs: list[Run], select: str) -> list[dict]:
    """Encoder runs (those tagged with a `method`) grouped by what differs between them,
    the chosen run of each group: full fine-tuning, LoRA, R-Drop and SCL on one
    checkpoint compare here, whichever family row each run stands for. Runs on a
    --limit slice form their own groups, so a slice never hides behind the full data;
    so do runs cut to another number of tokens."""
    groups: dict[tuple, list[Run]] = {}
    for run in model_runs(runs):
        if "method" not in run.tags:
            continue
        limit = None if run.full_data else run.params["limit"]
        key = (run.tags.get("model", ""), limit, run.params.get("tokens_per_review"), run.tags["method"],
               run.tags.get("quantize", "none"), run.tags.get("regulariser", "none"))
        groups.setdefault(key, []).append(run)
    rows = []
    # Checkpoint by checkpoint, full data first, then the larger slices; fewer tokens first.
    for key in sorted(groups, key=lambda k: (k[0], k[1] is not None, -int(k[1] or 0), int(k[2] or 0), k[3:])):
        model, limit, tokens, method, quantize, regulariser = key
        run = select_run(groups[key], select)
        row = dict.fromkeys(METHOD_COLUMNS)
        row.update(model=model, method=method, quantize=quantize, regulariser=regulariser, limit=limit,
                   tokens_per_review=tokens, family=run.family, **run_results(run))
        rows.append(row)
    # vs_plain: test accuracy minus that of plain full fine-tuning (no PEFT, no
    # regulariser) on the same checkpoint, the same data and the same tokens.
    def is_plain(row):
        return (row["method"], row["quantize"], row["regulariser"]) == ("none", "none", "none")

    def setting(row):
        return row["model"], row["limit"], row["tokens_per_review"]

    plain = {setting(row): row["test_acc"] for row in rows if is_plain(row)}
    for row in rows:
        baseline = plain.get(setting(row))
        if not is_plain(row) and not fmt.is_missing(baseline) and not fmt.is_missing(row["test_acc"]):
            row["vs_plain"] = round(row["test_acc"] - baseline, 5)
    return rows


def study_rows(runs: list[Run], run_url) -> list[dict]:
    """One row per study, from its parent run, which holds the study's totals.

    Unlike model rows, an unfinished parent still counts: a resumed study reuses
    its parent run, and an interrupted one has spent real device-hours. The
    note says when the study did not end normally.
    """
    by_id = {run.run_id: run for run in runs}
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
                   # the best trial (chosen on validation) scored on the test reviews, as every run is
                   best_test_acc=by_id[best_child].metrics.get("test_acc") if best_child in by_id else None,
                   best_run_id=best_child or None,
                   best_run_url=run_url(best_child) if best_child else None,
                   note="" if parent.finished else f"study run {parent.status}",
                   **{name: parent.metrics.get(name) for name in STUDY_EVIDENCE_METRICS},
                   **{name: parent.tags.get(name) for name in STUDY_EVIDENCE_TAGS})
        rows.append(row)
    return rows


def combined_rows(runs: list[Run], select: str) -> list[dict]:
    """The chosen distill run, the ensemble that taught it (else the chosen ensemble run), and that
    ensemble's members, each with its test accuracy and AUC, what scoring 1,000 reviews costs with
    it (an ensemble: its members' sum) and its training time; the chosen ensemble run too, with
    the members it adds, when it is not the teacher."""
    finished = model_runs(runs)
    by_id = {run.run_id: run for run in finished}
    student = select_run([run for run in finished if run.family == "distill"], select)
    best = select_run([run for run in finished if run.family == "ensemble"], select)
    ensemble = by_id.get(student.tags.get("teacher")) if student else None
    if ensemble is None or ensemble.family != "ensemble":
        ensemble = best
    chosen = []
    for role, stack in (("ensemble", ensemble), ("best ensemble", best if best is not ensemble else None)):
        if stack is not None:
            listed = {run.run_id for _, run in chosen}
            members = [by_id[i] for i in stack.params.get("members", "").split(",") if i in by_id]
            chosen += [("member", run) for run in members if run.run_id not in listed] + [(role, stack)]
    if student is not None:
        teacher = student.tags.get("teacher", "")
        role = "student of the ensemble" if ensemble and teacher == ensemble.run_id else \
            f"student of {student.tags.get('teacher_family', '?')} {teacher[:8]}"
        chosen.append((role, student))
    rows = []
    for role, run in chosen:
        row = dict.fromkeys(COMBINED_COLUMNS)
        row.update(role=role, family=run.family, model=run.tags.get("model", ""), run_id=run.run_id,
                   limit=None if run.full_data else run.params["limit"], test_acc=run.metrics.get("test_acc"),
                   test_auc=run.metrics.get("test_auc"),
                   predict_seconds_per_1k=run.metrics.get("predict_seconds_per_1k"),
                   train_seconds=run.metrics.get("train_seconds"))
        rows.append(row)
    return rows


def parallel_rows(runs: list[Run], final_loss) -> list[dict]:
    """Each finished run trained on several processes, followed by its one-process twin: the newest
    finished run of the same family and TWIN_PARAMS whose batch equals the parallel run's global batch
    (batch per process x processes). final_loss(run_id) is the last epoch's train_loss."""
    finished = model_runs(runs)

    def processes(run):
        return int(run.tags.get("processes", run.params.get("processes", 1)) or 1)

    def batch(run):
        return int(run.params.get("batch_size", 0) or 0)

    rows = []
    for run in sorted((r for r in finished if processes(r) > 1), key=lambda r: r.start_time):
        twins = [r for r in finished if processes(r) == 1 and r.family == run.family
                 and batch(r) == batch(run) * processes(run)
                 and all(r.params.get(k) == run.params.get(k) for k in TWIN_PARAMS)]
        for member in [run] + ([latest(twins)] if twins else []):
            row = dict.fromkeys(PARALLEL_COLUMNS)
            row.update(family=member.family, limit=None if member.full_data else member.params["limit"],
                       processes=processes(member), batch_size=batch(member),
                       global_batch=batch(member) * processes(member), run_id=member.run_id,
                       test_acc=member.metrics.get("test_acc"), final_train_loss=final_loss(member.run_id),
                       train_seconds=member.metrics.get("train_seconds"),
                       device_hours=member.metrics.get("device_hours"))
            rows.append(row)
    return rows


def precision_rows(runs: list[Run], select: str) -> list[dict]:
    """The runs of the training loop (those that log `step_ms`) grouped by what sets their speed:
    family, checkpoint, data, tokens per review, device, resolved precision and processes; the
    chosen run of each group. step_ms is the last epoch's training time per batch of one process
    (validation left out); tokens are what a review is cut to (an encoder's --max-length, an
    embedding family's max_length in words)."""
    groups: dict[tuple, list[Run]] = {}
    for run in model_runs(runs):
        if "step_ms" not in run.metrics or "precision" not in run.tags:
            continue
        key = (run.family, run.tags.get("model", ""), None if run.full_data else run.params["limit"],
               run.params.get("tokens_per_review") or run.params.get("max_length"), run.tags.get("device", ""),
               run.tags["precision"], int(run.tags.get("processes", 1) or 1))
        groups.setdefault(key, []).append(run)
    rows = []
    # Family by family, full data first, then fewer tokens, fp32 before the half precisions.
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2] is not None, -int(k[2] or 0), int(k[3] or 0),
                                             k[4], k[5] != "fp32", k[5], k[6])):
        family, model, limit, tokens, device, precision, processes = key
        run = select_run(groups[key], select)
        row = dict.fromkeys(PRECISION_COLUMNS)
        row.update(family=family, model=model, limit=limit, tokens=tokens, device=device, precision=precision,
                   processes=processes, run_id=run.run_id, step_ms=run.metrics.get("step_ms"),
                   train_seconds=run.metrics.get("train_seconds"), test_acc=run.metrics.get("test_acc"))
        rows.append(row)
    return rows


# What the unlabelled reviews buy: each method trained without them and with them, side by side.
UNLABELLED_COLUMNS = ["method", "limit", "without_run_id", "without_test_acc", "without_test_auc",
                      "without_train_seconds", "without_extra_seconds", "with_what", "with_run_id", "with_test_acc",
                      "with_test_auc", "with_train_seconds", "with_extra_seconds", "gain", "gain_low", "gain_high",
                      "gain_n"]
MLM_SUFFIX = "+mlm"  # the model tag of an encoder fine-tuned from an mlm run (recipes/encoder.py)


def total_train_seconds(run: Run, by_id: dict[str, Run]) -> float | None:
    """What it took to train a run from scratch: an ensemble's stacking plus its members' training,
    a student's fit plus its teacher's, a fine-tuning plus the mlm run it started from; None when a
    run it was made from is not in the store."""
    own = run.metrics.get("train_seconds")
    made_from = run.params.get("members", "").split(",") if run.family == "ensemble" else \
        [run.tags[tag] for tag in ("teacher", "pretrained_run") if run.tags.get(tag)]
    parts = [total_train_seconds(by_id[i], by_id) if i in by_id else None for i in made_from if i]
    return None if own is None or None in parts else own + sum(parts)


def unlabelled_use(run: Run, by_id: dict[str, Run]) -> tuple[str, bool, str, float | None] | None:
    """(method, whether the run learnt from the unlabelled reviews, how, the training seconds of what it
    was made from) for a run of a method that can go either way; None for any other run."""
    family, params, tags = run.family, run.params, run.tags
    recipe = FAMILIES[family].recipe if family in FAMILIES else None
    if family == "ensemble":
        return _ensemble_use(run, by_id)
    if recipe == "embedding":
        if params.get("embeddings") != "word2vec":
            return None
        uses = params.get("w2v_unlabeled", "True") == "True"
        return f"{family} on word2vec", uses, "word2vec on them", None
    if family in ("doc2vec", "doc2vec-transductive"):
        return family, params.get("unlabeled") == "True", "PV-DBOW vectors on them", None
    teacher = by_id.get(tags.get("teacher", ""))
    before = total_train_seconds(teacher, by_id) if teacher else None  # the teacher, from scratch
    if family == "distill":
        return f"distill (NB-LR student of {tags.get('teacher_family', '?')} {tags.get('teacher', '')[:8]})", \
            params.get("unlabeled") == "True", "teacher's targets on them", before
    if family in ("tfidf", "self-train"):
        return "TF-IDF NB-LR", family == "self-train", f"self-training ({tags.get('teacher_family', '?')} teacher)", \
            before
    if "model_type" in tags:  # an encoder run
        model = tags.get("model", "")
        base = model.removesuffix(MLM_SUFFIX)
        source = by_id.get(tags.get("pretrained_run", ""))  # the mlm run that made its checkpoint
        epochs = params.get("epochs")
        method = f"{family} `{model_label(base)}` ({params.get('tokens_per_review') or params.get('max_length')} " \
                 f"tokens, {epochs} epoch{'' if epochs == '1' else 's'})"
        return method, model.endswith(MLM_SUFFIX), \
            f"masked-LM pretraining on them (mlm run {tags.get('pretrained_run', '?')[:8]})", \
            source.metrics.get("train_seconds") if source else None
    return None


def _ensemble_use(run: Run, by_id: dict[str, Run]) -> tuple[str, bool, str, float | None] | None:
    """An ensemble learnt from the unlabelled reviews when a member did: the best stack of runs that
    never saw them beside the best that may use them. None when a member is not in the store
    (whether it used them is unknown)."""
    members = [by_id.get(run_id) for run_id in run.params.get("members", "").split(",") if run_id]
    if not members or None in members:
        return None
    uses = [unlabelled_use(member, by_id) for member in members]
    learnt = [member for member, use in zip(members, uses) if use is not None and use[1]]
    seconds = [total_train_seconds(member, by_id) for member in members]
    return "stacked ensemble", bool(learnt), \
        "members that did: " + ", ".join(f"{member.family} {member.run_id[:8]}" for member in learnt), \
        sum(seconds) if None not in seconds else None


def unlabelled_rows(runs: list[Run], select: str, compare=None) -> list[dict]:
    """One row per method and data size that has a finished run without the unlabelled reviews and
    one with them: the chosen run of each (store.select_run), and the test-accuracy gain with its
    95% interval from compare(with_run_id, without_run_id) (a paired bootstrap over the test
    reviews both predicted; evidence.compare_runs), where given."""
    every = {run.run_id: run for run in runs}
    groups: dict[tuple, dict[bool, list]] = {}
    for run in model_runs(runs):
        use = unlabelled_use(run, every)
        if use is None:
            continue
        method, uses, what, extra = use
        # The same labelled data on both sides: the data size and the split.
        key = (method, None if run.full_data else run.params.get("limit"), run.params.get("seed"),
               run.params.get("val_fraction"))
        groups.setdefault(key, {False: [], True: []})[uses].append((run, what, extra))
    rows = []
    for (method, limit, _, _), sides in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] is not None,
                                                                                 -int(item[0][1] or 0))):
        if not sides[False] or not sides[True]:
            continue
        without = select_run([run for run, _, _ in sides[False]], select)
        chosen = select_run([run for run, _, _ in sides[True]], select)
        _, what, extra = next(entry for entry in sides[True] if entry[0] is chosen)
        without_extra = next(entry[2] for entry in sides[False] if entry[0] is without)
        row = dict.fromkeys(UNLABELLED_COLUMNS)
        row.update(method=method, limit=limit, with_what=what, with_extra_seconds=extra,
                   without_extra_seconds=without_extra,
                   **{f"{side}_{name}": run.metrics.get(name) for side, run in (("without", without), ("with", chosen))
                      for name in ("test_acc", "test_auc", "train_seconds")},
                   without_run_id=without.run_id, with_run_id=chosen.run_id)
        if row["with_test_acc"] is not None and row["without_test_acc"] is not None:
            row["gain"] = row["with_test_acc"] - row["without_test_acc"]
        if compare is not None:
            try:
                found = compare(chosen.run_id, without.run_id)
                row.update(gain=found.difference, gain_low=found.low, gain_high=found.high, gain_n=found.n)
            except (UserError, ValueError):
                pass  # a run without logged predictions, or another test sample: the gain alone
        rows.append(row)
    return rows
