"""python analysis/score.py FILE.csv [FILE.csv ...] [--data-dir DIR]

Accuracy and AUC of Kaggle-format submissions (`make score FILES=...`).

A submission has the header `id,sentiment` and one row per test review, ids
quoted or not; `sentiment` is a label (0/1) or a probability of positive in
[0, 1]. The true labels come from the test ids themselves ("<n>_<rating>":
rating >= 7 is positive, <= 4 negative), and the full id list from the test
file (testData.tsv[.zip] in the data dir). Accuracy counts a value >= 0.5 as
positive; AUC ranks the values as given (for 0/1 labels it is the balanced
accuracy). A missing, duplicate or unknown id, or a value that is not a
number in [0, 1], is an error naming the file and line.
"""

import argparse
import csv
import math
from dataclasses import dataclass
from pathlib import Path

from imdb_sentiment import metrics, paths
from imdb_sentiment.data import label_from_id, load_test
from imdb_sentiment.errors import ArgumentParser, UserError, run_main

HEADER = ["id", "sentiment"]


@dataclass(frozen=True)
class Score:
    accuracy: float
    auc: float | None  # None when the labels hold one class only (no ranking to judge)
    rows: int


def test_labels(data_dir: Path) -> dict[str, int]:
    """id -> true label of every review in the test file."""
    rows = load_test(data_dir)
    return dict(zip(rows["id"], rows["label"].tolist()))


def labels_from_ids(ids: list[str], where: str = "test ids") -> dict[str, int]:
    """id -> true label, read from the ids alone (for id lists not from the test file)."""
    return {review_id: label_from_id(review_id, where) for review_id in ids}


def read_submission(path: Path) -> dict[str, float]:
    """id -> submitted value; the first problem stops with a UserError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    values: dict[str, float] = {}
    first_line: dict[str, int] = {}
    # utf-8-sig: a byte-order mark from a spreadsheet export must not break the header.
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != HEADER:
            raise UserError(f"{path}:1: header {header}; expected {','.join(HEADER)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not row:
                continue  # a blank line, e.g. a trailing one
            if len(row) != 2:
                raise UserError(f"{where}: {len(row)} fields; expected 2 (id,sentiment)")
            review_id, text = row[0].strip(), row[1].strip()
            if review_id in first_line:
                raise UserError(f"{where}: duplicate id {review_id!r} "
                                f"(first on line {first_line[review_id]})")
            try:
                value = float(text)
            except ValueError:
                raise UserError(f"{where}: sentiment {text!r} of id {review_id!r} "
                                "is not a number") from None
            if math.isnan(value) or not 0.0 <= value <= 1.0:
                raise UserError(f"{where}: sentiment {text} of id {review_id!r} "
                                "is outside [0, 1]")
            first_line[review_id] = reader.line_num
            values[review_id] = value
    if not values:
        raise UserError(f"{path}: no rows after the header")
    return values


def score(values: dict[str, float], labels: dict[str, int], where: str) -> Score:
    """Compare a submission with the true labels; every test id exactly once."""
    unknown = [i for i in values if i not in labels]
    if unknown:
        raise UserError(f"{where}: {len(unknown)} ids are not test ids, e.g. {unknown[:3]}")
    missing = [i for i in labels if i not in values]
    if missing:
        raise UserError(f"{where}: {len(missing)} of {len(labels)} test ids are missing, "
                        f"e.g. {missing[:3]}")
    truth = [labels[i] for i in values]
    submitted = list(values.values())
    # The same functions the trainers' test_acc / test_auc come from, so scores compare.
    auc = metrics.auc(truth, submitted)
    return Score(accuracy=metrics.accuracy(truth, submitted), rows=len(truth),
                 auc=None if math.isnan(auc) else auc)


def main(argv=None):
    parser = ArgumentParser(prog="analysis/score.py", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE.csv",
                        help="submission files (id,sentiment)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with testData.tsv[.zip] (default: $IMDB_DATA_DIR or data/)")
    args = parser.parse_args(argv)

    # Read every submission before the 25,000-review test file: a typo fails fast.
    submissions = [(path, read_submission(path)) for path in args.files]
    labels = test_labels(args.data_dir or paths.data_dir())
    width = max(len(str(path)) for path in args.files)
    print(f"{'file':<{width}}  accuracy  AUC")
    for path, values in submissions:
        result = score(values, labels, str(path))
        auc = "n/a" if result.auc is None else f"{result.auc:.5f}"
        print(f"{str(path):<{width}}  {result.accuracy:.5f}   {auc}")


if __name__ == "__main__":
    run_main(main)
