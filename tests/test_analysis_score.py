"""analysis/score.py on hand-made submissions with known accuracy and AUC."""

import subprocess
import sys

import pytest

from tests.support import run_make
from analysis.score import labels_from_ids, read_submission, score
from imdb_sentiment.errors import UserError
from imdb_sentiment.paths import REPO_ROOT

# Three positive (rating >= 7) and three negative (rating <= 4) reviews.
IDS = ["1_10", "2_8", "3_7", "4_1", "5_3", "6_4"]
LABELS = labels_from_ids(IDS)


def write(tmp_path, text, name="submission.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def score_text(tmp_path, text):
    path = write(tmp_path, text)
    return score(read_submission(path), LABELS, str(path))


def test_labels_come_from_the_ratings():
    assert LABELS == {"1_10": 1, "2_8": 1, "3_7": 1, "4_1": 0, "5_3": 0, "6_4": 0}


def test_probabilities_quoted_ids(tmp_path):
    # Predicted positive (>= 0.5): 1_10, 2_8, 5_3 -> right on 1_10, 2_8, 4_1, 6_4: 4/6.
    # AUC: of the 9 (positive, negative) pairs, 7 rank the positive higher.
    result = score_text(tmp_path, 'id,sentiment\n"1_10",0.9\n"2_8",0.6\n"3_7",0.3\n'
                                  '"4_1",0.2\n"5_3",0.7\n"6_4",0.1\n')
    assert result.accuracy == 4 / 6
    assert result.auc == pytest.approx(7 / 9, abs=1e-15)
    assert result.rows == 6


def test_labels_unquoted_any_order_and_half_counts_as_positive(tmp_path):
    # Predicted positive: 5_3 (wrong) and 1_10 at exactly 0.5 (right); 4_1, 6_4 right: 3/6.
    result = score_text(tmp_path, "id,sentiment\n6_4,0\n5_3,1\n4_1,0\n3_7,0\n2_8,0\n1_10,0.5\n")
    assert result.accuracy == 3 / 6
    # Positives (0.5, 0, 0) against negatives (0, 1, 0): 0.5 wins 2 pairs; each
    # positive 0 ties 2 negatives (a tie counts half): (2 + 4 * 0.5) / 9.
    assert result.auc == pytest.approx(4 / 9, abs=1e-15)


def test_perfect_submission_with_bom_and_crlf(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b"\xef\xbb\xbfid,sentiment\r\n" + b"".join(
        f"{i},{label}\r\n".encode() for i, label in LABELS.items()) + b"\r\n")
    result = score(read_submission(path), LABELS, str(path))
    assert (result.accuracy, result.auc) == (1.0, 1.0)


@pytest.mark.parametrize("text, message", [
    ("id,sentiment\n1_10,1\n2_8,1\n3_7,1\n4_1,0\n5_3,0\n",
     r"1 of 6 test ids are missing, e.g. \['6_4'\]"),
    ("id,sentiment\n1_10,1\n2_8,1\n3_7,1\n4_1,0\n5_3,0\n6_4,0\n9_9,1\n",
     r"1 ids are not test ids, e.g. \['9_9'\]"),
])
def test_id_set_errors(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        score_text(tmp_path, text)


@pytest.mark.parametrize("text, message", [
    ("id,sentiment\n1_10,1\n2_8,1\n1_10,0\n", r":4: duplicate id '1_10' \(first on line 2\)"),
    ("id,sentiment\n1_10,1.5\n", r":2: sentiment 1.5 of id '1_10' is outside \[0, 1\]"),
    ("id,sentiment\n1_10,-0.1\n", r":2: sentiment -0.1 of id '1_10' is outside \[0, 1\]"),
    ("id,sentiment\n1_10,nan\n", r":2: sentiment nan of id '1_10' is outside \[0, 1\]"),
    ("id,sentiment\n1_10,positive\n", r":2: sentiment 'positive' of id '1_10' is not a number"),
    ("id,sentiment\n1_10,1,2\n", r":2: 3 fields; expected 2 \(id,sentiment\)"),
    ("id,label\n1_10,1\n", r":1: header \['id', 'label'\]; expected id,sentiment"),
    ("", r":1: header None; expected id,sentiment"),
    ("id,sentiment\n", r"no rows after the header"),
])
def test_file_errors_name_the_line(tmp_path, text, message):
    with pytest.raises(UserError, match=message) as caught:
        read_submission(write(tmp_path, text))
    assert str(caught.value).startswith(str(tmp_path / "submission.csv"))


@pytest.fixture
def tiny_test_file(tmp_path):
    """A testData.tsv holding IDS, and a submission right on 4 of them (AUC 6/9)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "testData.tsv").write_text("id\treview\n" + "".join(
        f'"{i}"\t"a review"\n' for i in IDS))
    # Right on 1_10, 2_8, 5_3, 6_4: 4/6. AUC: 1_10 and 2_8 each beat 5_3 and 6_4 and
    # tie 4_1 (2.5 pairs each); 3_7 ties 5_3 and 6_4 (1 pair): 6/9.
    good = write(tmp_path, "id,sentiment\n" + "".join(
        f"{i},{0.9 if i in ('1_10', '2_8', '4_1') else 0.1}\n" for i in IDS), "good.csv")
    return data, good


@pytest.mark.slow
def test_script_scores_against_the_test_file(tiny_test_file, tmp_path):
    """The real entry point: test ids from a (tiny) testData.tsv in --data-dir."""
    data, good = tiny_test_file
    short = write(tmp_path, "id,sentiment\n1_10,1\n", "short.csv")

    command = [sys.executable, "analysis/score.py", "--data-dir", str(data)]
    done = subprocess.run(command + [str(good)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    width = len(str(good))
    assert done.stdout == (f"{'file':<{width}}  accuracy  AUC\n"
                           f"{good}  0.66667   0.66667\n")

    done = subprocess.run(command + [str(short)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == f"error: {short}: 5 of 6 test ids are missing, e.g. ['2_8', '3_7', '4_1']\n"


@pytest.mark.slow
def test_make_score(tiny_test_file):
    data, good = tiny_test_file
    done = run_make("score", f"FILES={good}", f"ARGS=--data-dir {data}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"{good}  0.66667   0.66667\n")
    done = run_make("score")
    assert done.returncode == 2
    assert 'usage: make score FILES="submission.csv ..."' in done.stderr
