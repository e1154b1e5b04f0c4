"""Files -> rows: one schema (id, review, label, rating) from Kaggle or aclImdb.

Kaggle's files are tab-separated with a header line; ids and reviews are
wrapped in double quotes, quotes inside a review escaped as \\". They may be
plain, zipped one file to a zip, or inside the competition's outer zip,
and may start with a UTF-8 byte-order mark and end lines with CRLF, as
Windows editors save them.
The Stanford layout is aclImdb/{train,test}/{pos,neg,unsup}/<n>_<rating>.txt,
as a directory or the aclImdb_v1.tar.gz archive.

Every reader checks what it reads and stops at the first problem with a
UserError naming the file and line: a clear message beats a model silently
trained on a broken file.
"""

import codecs
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import UserError

# Which columns each Kaggle file has, in order.
KAGGLE_FILES = {
    "labeled": ("labeledTrainData.tsv", ("id", "sentiment", "review")),
    "test": ("testData.tsv", ("id", "review")),
    "unlabeled": ("unlabeledTrainData.tsv", ("id", "review")),
}
COLUMNS = ["id", "review", "label", "rating"]
_ID = re.compile(r"^(\d+)_(\d+)$")


def rating_from_id(review_id: str, where: str) -> int:
    """The star rating an id "<n>_<rating>" carries."""
    match = _ID.match(review_id)
    if not match:
        raise UserError(f"{where}: id {review_id!r} is not of the form <number>_<rating>")
    return int(match.group(2))


def label_from_rating(rating: int, review_id: str, where: str) -> int:
    """IMDB's rule: rating >= 7 is positive, <= 4 negative; 5-6 never occur."""
    if 7 <= rating <= 10:
        return 1
    if 1 <= rating <= 4:
        return 0
    raise UserError(f"{where}: id {review_id!r} has rating {rating}; "
                    "expected 1-4 (negative) or 7-10 (positive)")


def label_from_id(review_id: str, where: str) -> int:
    return label_from_rating(rating_from_id(review_id, where), review_id, where)


def _unquote(field: str) -> str:
    if len(field) >= 2 and field[0] == '"' and field[-1] == '"':
        return field[1:-1].replace('\\"', '"')
    return field


@dataclass
class ReadResult:
    rows: pd.DataFrame
    sha256: str  # of the uncompressed TSV bytes, as shared/data/README.md lists them


def parse_kaggle_tsv(raw: bytes, kind: str, name: str) -> ReadResult:
    """Parse the bytes of one Kaggle TSV of the given kind ('labeled', 'test', 'unlabeled')."""
    _, expected = KAGGLE_FILES[kind]
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UserError(f"{name}:1: file is UTF-16 (it starts with a UTF-16 byte-order mark); "
                        "save it as UTF-8")
    # Editors on Windows save "UTF-8 with BOM" and CRLF line ends: the BOM goes
    # here, each line's trailing \r below. The sha256 stays that of the file's bytes.
    text = raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        raise UserError(f"{name}: file is empty; expected a header line {chr(9).join(expected)!r}")
    ids, reviews, labels, ratings = [], [], [], []
    seen: dict[str, int] = {}
    for number, line_bytes in enumerate(lines, start=1):
        where = f"{name}:{number}"
        try:
            line = line_bytes.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            raise UserError(f"{where}: bytes that are not UTF-8 at column {error.start + 1}") from None
        fields = line.split("\t")
        if number == 1:
            header = tuple(_unquote(f).strip() for f in fields)
            if header != expected:
                raise UserError(f"{where}: header has columns {list(header)}; expected {list(expected)}")
            continue
        if len(fields) != len(expected):
            what = "missing" if len(fields) < len(expected) else "extra"
            raise UserError(f"{where}: {what} column: {len(fields)} tab-separated fields, "
                            f"expected {len(expected)} ({', '.join(expected)})")
        record = dict(zip(expected, fields))
        review_id = _unquote(record["id"]).strip()
        review = _unquote(record["review"])
        if not review.strip():
            raise UserError(f"{where}: review of id {review_id!r} is empty")
        if review_id in seen:
            raise UserError(f"{where}: duplicate id {review_id!r} (first on line {seen[review_id]})")
        seen[review_id] = number
        rating = rating_from_id(review_id, where)
        if kind == "labeled":
            sentiment = _unquote(record["sentiment"]).strip()
            if sentiment not in ("0", "1"):
                raise UserError(f"{where}: sentiment {sentiment!r}; expected 0 or 1")
            label = int(sentiment)
        elif kind == "test":
            label = label_from_rating(rating, review_id, where)
        else:
            label, rating = -1, 0  # unlabeled: no label, and ids carry rating 0
        ids.append(review_id)
        reviews.append(review)
        labels.append(label)
        ratings.append(rating)
    rows = pd.DataFrame({"id": ids, "review": reviews,
                         "label": np.asarray(labels, dtype=np.int64),
                         "rating": np.asarray(ratings, dtype=np.int64)})
    return ReadResult(rows, hashlib.sha256(raw).hexdigest())


def _read_member_bytes(zip_path: Path, wanted: str) -> bytes | None:
    """The bytes of `wanted` inside a zip, looking one zip deep (Kaggle's outer zip)."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        for member in names:
            base = member.rsplit("/", 1)[-1]
            if base == wanted:
                return archive.read(member)
        for member in names:
            base = member.rsplit("/", 1)[-1]
            if base == wanted + ".zip":
                with zipfile.ZipFile(io.BytesIO(archive.read(member))) as inner:
                    inner_names = inner.namelist()
                    if len(inner_names) != 1:
                        raise UserError(f"{zip_path}!{member}: expected one file inside, "
                                        f"found {len(inner_names)}")
                    return inner.read(inner_names[0])
    return None


def find_kaggle_file(data_dir: Path, kind: str) -> Path | None:
    filename, _ = KAGGLE_FILES[kind]
    for candidate in (data_dir / filename, data_dir / (filename + ".zip")):
        if candidate.is_file():
            return candidate
    return None


def _kaggle_bytes(path: Path, kind: str) -> tuple[bytes, str]:
    """(the uncompressed TSV bytes of one Kaggle file, plain or zipped; where they came from)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    filename, _ = KAGGLE_FILES[kind]
    if path.suffix != ".zip":
        return path.read_bytes(), str(path)
    try:
        raw = _read_member_bytes(path, filename)
    except zipfile.BadZipFile:
        raise UserError(f"{path}: not a valid zip archive") from None
    if raw is None:
        raise UserError(f"{path}: no {filename} inside")
    return raw, f"{path}!{filename}"


def read_kaggle_file(path: Path, kind: str) -> ReadResult:
    """Read one Kaggle file, plain or zipped."""
    raw, where = _kaggle_bytes(path, kind)
    return parse_kaggle_tsv(raw, kind, where)


def load_kaggle(data_dir, kind: str) -> ReadResult:
    """Read `kind` from a data directory holding Kaggle's files."""
    data_dir = Path(data_dir)
    path = find_kaggle_file(data_dir, kind)
    if path is None:
        filename, _ = KAGGLE_FILES[kind]
        raise UserError(f"{data_dir / filename}: file not found (nor .zip); "
                        "run `make data` (or `make data FROM=<dir or archive>`), or pass --data-dir")
    return read_kaggle_file(path, kind)


def kaggle_sha256(data_dir, kind: str) -> str:
    """sha256 of `kind`'s uncompressed TSV bytes (as ReadResult.sha256), without parsing the rows:
    what a cache built from that file keys on."""
    path = find_kaggle_file(Path(data_dir), kind)
    if path is None:
        return load_kaggle(data_dir, kind).sha256  # its one-line "file not found"
    return hashlib.sha256(_kaggle_bytes(path, kind)[0]).hexdigest()


def unlabelled_reviews(data_dir, limit: int | None = None) -> pd.DataFrame:
    """The unlabelled reviews a method may learn from: Kaggle's unlabelled file less its copies of
    labelled and test reviews (it holds 373 of the former and 269 of the latter, word for word),
    so that no validation or test review's text reaches a model through it; at most `limit`."""
    rows = load_kaggle(data_dir, "unlabeled").rows

    def same(texts):
        return {" ".join(text.split()) for text in texts}

    elsewhere = same(load_kaggle(data_dir, "labeled").rows["review"]) | same(load_kaggle(data_dir, "test").rows["review"])
    kept = rows[[" ".join(text.split()) not in elsewhere for text in rows["review"]]]
    return kept.iloc[:limit].reset_index(drop=True)


def load_test(data_dir) -> pd.DataFrame:
    return load_kaggle(data_dir, "test").rows


@dataclass
class Splits:
    """What a training script works on. sha256 identifies the data it came from."""
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    sha256: str


def stratified_sample(rows: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most n rows, with the label proportions of `rows`, chosen by `seed`."""
    if n >= len(rows):
        return rows
    rng = np.random.default_rng(seed)
    picked = []
    for label, group in rows.groupby("label", sort=True):
        share = round(n * len(group) / len(rows))
        picked.append(group.index.to_numpy()[rng.permutation(len(group))[:share]])
    return rows.loc[np.sort(np.concatenate(picked))].reset_index(drop=True)


def stratified_split(rows: pd.DataFrame, fraction: float, seed: int):
    """(rest, held_out): held_out has `fraction` of each label, chosen by `seed`."""
    rng = np.random.default_rng(seed)
    held = []
    for label, group in rows.groupby("label", sort=True):
        count = int(round(len(group) * fraction))
        held.append(group.index.to_numpy()[rng.permutation(len(group))[:count]])
    held_index = np.sort(np.concatenate(held))
    held_out = rows.loc[held_index].reset_index(drop=True)
    rest = rows.drop(index=held_index).reset_index(drop=True)
    return rest, held_out


def load_splits(data_dir, val_fraction: float = 0.2, seed: int = 42,
                limit: int | None = None) -> Splits:
    """Train / validation (stratified, seeded) from the labelled file; test from the test file.

    `limit` keeps at most that many training and that many test reviews
    (stratified), for quick runs; the validation share is taken from those.
    """
    labeled = load_kaggle(data_dir, "labeled")
    test = load_kaggle(data_dir, "test")
    labeled_rows, test_rows = labeled.rows, test.rows
    if limit:
        labeled_rows = stratified_sample(labeled_rows, limit, seed)
        test_rows = stratified_sample(test_rows, limit, seed)
    train, val = stratified_split(labeled_rows, val_fraction, seed)
    digest = hashlib.sha256((labeled.sha256 + test.sha256).encode()).hexdigest()
    return Splits(train=train, val=val, test=test_rows, sha256=digest)


# --- Stanford aclImdb layout -------------------------------------------------

_ACL_PARTS = {
    # kind: [(split, polarity dir, label)]
    "labeled": [("train", "pos", 1), ("train", "neg", 0)],
    "test": [("test", "pos", 1), ("test", "neg", 0)],
    "unlabeled": [("train", "unsup", -1)],
}
_ACL_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


def _acl_record(name: str, text_bytes: bytes, label: int, where: str):
    match = _ACL_NAME.match(name)
    if not match:
        raise UserError(f"{where}: file name is not <number>_<rating>.txt")
    try:
        text = text_bytes.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{where}: bytes that are not UTF-8 at byte {error.start + 1}") from None
    # Kaggle's files have no tabs or line breaks inside a review.
    text = re.sub(r"[\t\r\n]+", " ", text).strip()
    if not text:
        raise UserError(f"{where}: review is empty")
    review_id = f"{match.group(1)}_{match.group(2)}"
    rating = int(match.group(2))
    if label >= 0:
        expected = label_from_rating(rating, review_id, where)
        if expected != label:
            raise UserError(f"{where}: rating {rating} disagrees with its folder")
    return review_id, text, label, rating if label >= 0 else 0


def read_aclimdb(source, kind: str) -> pd.DataFrame:
    """Rows of `kind` from an aclImdb directory or aclImdb_v1.tar.gz."""
    import tarfile

    source = Path(source)
    records = []
    if source.is_dir():
        root = source / "aclImdb" if (source / "aclImdb").is_dir() else source
        for split, polarity, label in _ACL_PARTS[kind]:
            folder = root / split / polarity
            if not folder.is_dir():
                raise UserError(f"{folder}: folder not found; expected the aclImdb layout "
                                "{train,test}/{pos,neg,unsup}/<n>_<rating>.txt")
            for path in sorted(folder.iterdir()):
                records.append(_acl_record(path.name, path.read_bytes(), label, str(path)))
    else:
        wanted = {f"{split}/{polarity}": label for split, polarity, label in _ACL_PARTS[kind]}
        try:
            with tarfile.open(source, "r:*") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    parts = member.name.split("/")
                    if len(parts) < 3:
                        continue
                    key = "/".join(parts[-3:-1])
                    if key in wanted:
                        data = archive.extractfile(member).read()
                        records.append(_acl_record(parts[-1], data, wanted[key],
                                                   f"{source}!{member.name}"))
        except tarfile.TarError as error:
            raise UserError(f"{source}: not a readable tar archive ({error})") from None
        if not records:
            raise UserError(f"{source}: no aclImdb reviews for {kind} inside")
    rows = pd.DataFrame(records, columns=COLUMNS)
    duplicated = rows["id"].duplicated()
    if duplicated.any():
        raise UserError(f"{source}: duplicate id {rows['id'][duplicated].iloc[0]!r} in {kind}")
    return rows


def to_kaggle_tsv(rows: pd.DataFrame, kind: str) -> bytes:
    """Rows written back in Kaggle's own format (for `make data` from aclImdb)."""
    _, columns = KAGGLE_FILES[kind]
    out = ["\t".join(columns)]
    for review_id, review, label in zip(rows["id"], rows["review"], rows["label"]):
        quoted = '"' + review.replace('"', '\\"') + '"'
        if kind == "labeled":
            out.append(f'"{review_id}"\t{label}\t{quoted}')
        else:
            out.append(f'"{review_id}"\t{quoted}')
    return ("\n".join(out) + "\n").encode("utf-8")
