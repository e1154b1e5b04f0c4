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
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the `analysis` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import _format as fmt
from analysis._render import benchmark_markdown, render_markdown
from analysis._rows import (METHOD_COLUMNS, MODEL_COLUMNS, STUDY_COLUMNS, Table, load_reference, method_rows,
                            model_tables, study_rows)
from analysis._runs import RunStore, add_store_arguments, open_store
from imdb_sentiment.errors import UserError, run_main

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
DEFAULT_UI_URL = "http://127.0.0.1:5000"


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
