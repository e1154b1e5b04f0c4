"""The command line generated from config dataclasses, and its one-line errors."""

import pytest

from imdb_sentiment.config import parse_config
from imdb_sentiment.errors import UserError
from imdb_sentiment.pipeline import EmbeddingConfig

from conftest import PYTHON, run_script


def test_flags_come_from_fields_with_script_defaults():
    config = parse_config(EmbeddingConfig, ["--max-length", "128", "--no-freeze-embeddings",
                                            "--limit", "50"], defaults={"model": "gru"})
    assert (config.model, config.max_length, config.freeze_embeddings, config.limit) == ("gru", 128, False, 50)


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs: expected an integer >= 1, got 0"),
    (["--val-fraction", "1.5"], "--val-fraction: expected a number in (0, 0.9), got 1.5"),
    (["--truncation", "middle"], "argument --truncation: invalid choice: 'middle'"),
    (["--model", "nope"], "--model: expected one of"),
    (["--embeddings", "/no/such/file.vec"], "--embeddings: expected word2vec, random, or an existing vectors file"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_flags_are_one_line_errors(argv, message):
    with pytest.raises(UserError) as caught:
        parse_config(EmbeddingConfig, argv)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_every_train_script_has_the_common_flags_in_help():
    for script in ("train/lstm.py", "train/tfidf.py"):
        help_text = run_script([PYTHON, script, "--help"]).stdout
        for name in ("--epochs", "--seed", "--max-length", "--limit", "--run-name", "--data-dir"):
            assert name in help_text, f"{script} --help lacks {name}"
        assert "(default:" in help_text


def test_script_error_exits_2_without_traceback():
    result = run_script([PYTHON, "train/lstm.py", "--epochs", "-1"], check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --epochs: expected an integer >= 1, got -1"
