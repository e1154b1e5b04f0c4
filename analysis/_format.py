"""Shared output helpers for the analysis scripts: number formats, tables as text.

The CSV files keep raw numbers (for further analysis); markdown and the
terminal get these human formats.
"""

import csv
import math
from pathlib import Path


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fixed(value, digits: int = 4, signed: bool = False) -> str:
    if is_missing(value):
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def duration(seconds) -> str:
    """Training time as a person reads it: '42s', '4m 05s', '3h 07m'."""
    if is_missing(seconds):
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def count(value) -> str:
    """Parameter counts to three significant digits: '66.4M', '12.3k'."""
    if is_missing(value):
        return ""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return str(int(value))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        # A '|' inside a cell would split it into two columns.
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header))] + [line(r) for r in rows])


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    """Rows as CSV, missing values as empty cells."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if is_missing(row[k]) else row[k]) for k in columns})
