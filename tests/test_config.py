"""The command line generated from config dataclasses, and its one-line errors."""

import re

import pytest

from imdb_sentiment.config import EmbeddingConfig, EncoderConfig, build_parser, parse_config
from imdb_sentiment.errors import UserError

from tests.support import PYTHON, run_script


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


@pytest.mark.parametrize("config_cls", [EmbeddingConfig, EncoderConfig])
@pytest.mark.parametrize("argv, message", [
    (["--grad-clip", "-1"], "--grad-clip: expected a number >= 0 (0: off), got -1.0"),
    (["--warmup-ratio", "1"], "--warmup-ratio: expected a number in [0, 1), got 1.0"),
    (["--patience", "-1"], "--patience: expected an integer >= 0 (0: never stop early), got -1"),
    (["--eval-batch-size", "0"], "--eval-batch-size: expected an integer >= 1, got 0"),
])
def test_the_shared_training_flags_are_checked_alike_in_both_families(config_cls, argv, message):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_config(config_cls, argv)


def test_a_restated_default_keeps_the_shared_help():
    """EncoderConfig changes the shared fields' defaults only: same help text, its own default."""
    embedding, encoder = (build_parser(cls) for cls in (EmbeddingConfig, EncoderConfig))
    for name in ("batch_size", "eval_batch_size", "weight_decay", "warmup_ratio", "patience", "epochs"):
        ours, theirs = (next(a for a in parser._actions if a.dest == name) for parser in (encoder, embedding))
        assert ours.help == theirs.help
        assert ours.default != theirs.default, name
    assert EncoderConfig().batch_size == 16 and EmbeddingConfig().batch_size == 64


@pytest.mark.slow
def test_every_train_script_has_the_common_flags_in_help():
    for script, own in (("train/lstm.py", "--epochs"), ("train/tfidf.py", "--max-iter")):
        help_text = run_script([PYTHON, script, "--help"]).stdout
        for name in (own, "--seed", "--max-length", "--limit", "--run-name", "--data-dir", "--config",
                     "--print-config"):
            assert name in help_text, f"{script} --help lacks {name}"
        assert "(default:" in help_text
    assert "--epochs" not in run_script([PYTHON, "train/tfidf.py", "--help"]).stdout


@pytest.mark.slow
def test_script_error_exits_2_without_traceback():
    result = run_script([PYTHON, "train/lstm.py", "--epochs", "-1"], check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --epochs: expected an integer >= 1, got -1"
