"""Readers: Kaggle and aclImdb layouts, every bad input, splits, `make data`."""

import tarfile
import zipfile

import pytest

from imdb_sentiment import data, fetch
from imdb_sentiment.errors import UserError

from tests.support import run_script, write_kaggle_files


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_kaggle_plain_and_unquotes(tiny_data_dir):
    rows = data.load_kaggle(tiny_data_dir, "test").rows
    assert list(rows.columns) == ["id", "review", "label", "rating"]
    assert len(rows) == 60
    assert rows["review"][0].endswith('"quoted"')  # \" inside a review becomes "
    assert set(rows["label"]) == {0, 1}


def test_test_labels_come_from_ratings(tmp_path):
    path = write(tmp_path / "testData.tsv", 'id\treview\n"1_10"\t"a"\n"2_7"\t"b"\n"3_4"\t"c"\n"4_1"\t"d"\n')
    rows = data.read_kaggle_file(path, "test").rows
    assert rows["label"].tolist() == [1, 1, 0, 0]
    assert rows["rating"].tolist() == [10, 7, 4, 1]


def test_reads_zip_and_competition_outer_zip(tiny_data_dir, tmp_path):
    inner = tmp_path / "labeledTrainData.tsv.zip"
    with zipfile.ZipFile(inner, "w") as archive:
        archive.write(tiny_data_dir / "labeledTrainData.tsv", "labeledTrainData.tsv")
    assert len(data.read_kaggle_file(inner, "labeled").rows) == 60
    outer = tmp_path / "word2vec-nlp-tutorial.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.write(inner, "labeledTrainData.tsv.zip")
    raw = data._read_member_bytes(outer, "labeledTrainData.tsv")
    assert raw == (tiny_data_dir / "labeledTrainData.tsv").read_bytes()


def test_sha256_is_of_the_uncompressed_tsv(real_data_dir):
    result = data.load_kaggle(real_data_dir, "test")
    assert result.sha256 == "32153b1c02dd8359785d7d8943f716f13544bdbe67a683b6e2be805952d04996"
    assert len(result.rows) == 25000
    assert result.rows["label"].mean() == 0.5


@pytest.mark.parametrize("content, kind, expected", [
    ('id\treview\n"1_10"\t"fine"\n', "labeled", "header has columns ['id', 'review']"),
    ('id\tsentiment\treview\n"1_10"\t1\n', "labeled", ":2: missing column"),
    ('id\tsentiment\treview\n"1_10"\t1\t"a"\t"b"\n', "labeled", ":2: extra column"),
    ('id\tsentiment\treview\n"1_10"\t2\t"a"\n', "labeled", ":2: sentiment '2'; expected 0 or 1"),
    ('id\tsentiment\treview\n"1_10"\t1\t"   "\n', "labeled", ":2: review of id '1_10' is empty"),
    ('id\tsentiment\treview\n"1_10"\t1\t"a"\n"1_10"\t1\t"b"\n', "labeled",
     ":3: duplicate id '1_10' (first on line 2)"),
    ('id\treview\n"abc"\t"a"\n', "test", ":2: id 'abc' is not of the form <number>_<rating>"),
    ('id\treview\n"1_5"\t"a"\n', "test", ":2: id '1_5' has rating 5"),
    ("", "test", "file is empty"),
])
def test_bad_input_names_file_and_line(tmp_path, content, kind, expected):
    path = write(tmp_path / "file.tsv", content)
    with pytest.raises(UserError) as caught:
        data.read_kaggle_file(path, kind)
    message = str(caught.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_bytes_not_utf8(tmp_path):
    path = tmp_path / "testData.tsv"
    path.write_bytes(b'id\treview\n"1_10"\t"ok"\n"2_10"\t"caf\xe9"\n')
    with pytest.raises(UserError, match=r"testData.tsv:3: bytes that are not UTF-8"):
        data.read_kaggle_file(path, "test")


def as_windows_file(raw: bytes) -> bytes:
    """The same file as Notepad's "UTF-8 with BOM" saves it: a byte-order mark, CRLF line ends."""
    return b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n")


@pytest.mark.parametrize("kind", ["labeled", "test", "unlabeled"])
@pytest.mark.parametrize("zipped", [False, True], ids=["plain", "zip"])
def test_reads_bom_and_crlf_files(tiny_data_dir, tmp_path, kind, zipped):
    filename, _ = data.KAGGLE_FILES[kind]
    expected = data.load_kaggle(tiny_data_dir, kind).rows
    windows = tmp_path / "windows"
    windows.mkdir()
    raw = as_windows_file((tiny_data_dir / filename).read_bytes())
    if zipped:
        with zipfile.ZipFile(windows / (filename + ".zip"), "w") as archive:
            archive.writestr(filename, raw)
    else:
        (windows / filename).write_bytes(raw)
    rows = data.load_kaggle(windows, kind).rows
    assert len(rows) == 60
    assert rows.equals(expected)  # no \ufeff in the first id, no \r at the end of any review


def test_bom_and_crlf_file_with_a_bad_line_still_names_it(tmp_path):
    path = tmp_path / "labeledTrainData.tsv"
    path.write_bytes(as_windows_file(b'id\tsentiment\treview\n"1_10"\t1\t"a"\n"2_10"\t1\n'))
    with pytest.raises(UserError) as caught:
        data.read_kaggle_file(path, "labeled")
    message = str(caught.value)
    assert f"{path}:3: missing column" in message
    assert "\r" not in message and "\n" not in message


def test_utf16_file_says_save_as_utf8(tmp_path):
    path = tmp_path / "testData.tsv"
    path.write_bytes('id\treview\n"1_10"\t"a"\n'.encode("utf-16"))
    with pytest.raises(UserError, match=r"testData.tsv:1: file is UTF-16.*save it as UTF-8"):
        data.read_kaggle_file(path, "test")


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(UserError, match=r"labeledTrainData.tsv: file not found .*make data"):
        data.load_splits(tmp_path)


def test_splits_are_stratified_seeded_and_limited(tiny_data_dir):
    first = data.load_splits(tiny_data_dir, val_fraction=0.2, seed=1)
    again = data.load_splits(tiny_data_dir, val_fraction=0.2, seed=1)
    other = data.load_splits(tiny_data_dir, val_fraction=0.2, seed=2)
    assert len(first.train) == 48 and len(first.val) == 12
    assert first.val["label"].mean() == 0.5
    assert first.val["id"].tolist() == again.val["id"].tolist()
    assert first.val["id"].tolist() != other.val["id"].tolist()
    assert not set(first.train["id"]) & set(first.val["id"])
    limited = data.load_splits(tiny_data_dir, val_fraction=0.25, seed=1, limit=20)
    assert len(limited.train) + len(limited.val) == 20 and len(limited.test) == 20
    assert limited.test["label"].mean() == 0.5


def make_aclimdb(root):
    reviews = {"train/pos": ["1_9", "2_7"], "train/neg": ["3_2", "4_4"], "train/unsup": ["5_0"],
               "test/pos": ["1_10"], "test/neg": ["2_1"]}
    for folder, ids in reviews.items():
        (root / "aclImdb" / folder).mkdir(parents=True)
        for review_id in ids:
            write(root / "aclImdb" / folder / f"{review_id}.txt", f"Review {review_id}.<br />Line\ttwo")
    return root


def test_reads_aclimdb_directory_and_tarball(tmp_path):
    root = make_aclimdb(tmp_path / "src")
    rows = data.read_aclimdb(root, "labeled")
    assert sorted(rows["id"]) == ["1_9", "2_7", "3_2", "4_4"]
    assert dict(zip(rows["id"], rows["label"])) == {"1_9": 1, "2_7": 1, "3_2": 0, "4_4": 0}
    assert "\t" not in rows["review"][0]
    tarball = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(root / "aclImdb", arcname="aclImdb")
    from_tar = data.read_aclimdb(tarball, "test")
    assert sorted(from_tar["id"]) == ["1_10", "2_1"]
    assert data.read_aclimdb(tarball, "unlabeled")["id"].tolist() == ["5_0"]


def test_import_aclimdb_writes_kaggle_format_that_reads_back(tmp_path):
    root = make_aclimdb(tmp_path / "src")
    target = tmp_path / "data"
    fetch.import_from(root, target)
    rows = data.load_kaggle(target, "labeled").rows
    assert sorted(rows["id"]) == ["1_9", "2_7", "3_2", "4_4"]
    assert data.load_kaggle(target, "test").rows["label"].tolist() in ([1, 0], [0, 1])


def test_import_never_overwrites_different_data(tmp_path):
    source = write_kaggle_files(tmp_path / "a", n=20)
    target = tmp_path / "data"
    fetch.import_from(source, target)
    messages = fetch.import_from(source, target)  # same files again: fine
    assert all("identical" in m for m in messages)
    changed = write_kaggle_files(tmp_path / "b", n=30)
    with pytest.raises(UserError, match="exists with different content"):
        fetch.import_from(changed, target)
    assert len(data.load_kaggle(target, "labeled").rows) == 20  # untouched
    fetch.import_from(changed, target, force=True)
    assert len(data.load_kaggle(target, "labeled").rows) == 30


@pytest.mark.slow
def test_make_data_from_a_bad_path_is_one_line(tmp_path):
    result = run_script(["make", "--no-print-directory", "data", f"FROM={tmp_path / 'nope'}"], check=False)
    assert result.returncode != 0
    assert f"error: FROM={tmp_path / 'nope'}: no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_unlabelled_reviews_a_method_learns_from_hold_no_labelled_or_test_text(real_data_dir):
    """Kaggle's unlabelled file repeats some labelled and test reviews word for word: those go."""
    from imdb_sentiment import data

    kept = data.unlabelled_reviews(real_data_dir)
    norm = lambda text: " ".join(text.split())  # noqa: E731
    elsewhere = {norm(t) for kind in ("labeled", "test") for t in data.load_kaggle(real_data_dir, kind).rows["review"]}
    raw = data.load_kaggle(real_data_dir, "unlabeled").rows
    copies = sum(norm(t) in elsewhere for t in raw["review"])
    assert copies > 600  # 373 labelled and 269 test reviews, some more than once
    assert len(kept) == len(raw) - copies and not any(norm(t) in elsewhere for t in kept["review"])
    assert len(data.unlabelled_reviews(real_data_dir, 100)) == 100
