"""The same behaviour on CPUs with and without native bf16.

A CPU with AVX512-BF16 or AMX computes bf16 in hardware; one with AVX2 only
emulates it, and oneDNN has no bf16 LSTM there. Tests of one kind carry the
marker native_bf16 or no_native_bf16 and skip, saying why, on the other;
`make test` runs every precision test a second time with the instruction set
capped to AVX2 (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY) where the host has
native bf16, so both kinds are proven from one host. The tests here that start
a process with those caps run on every host.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

from imdb_sentiment import device as devices
from imdb_sentiment.errors import UserError
from imdb_sentiment.models import ConvClassifier, forward_batch
from imdb_sentiment.training import FitSettings, fit, predict
from tests.support import REPO, loaders, tiny_lstm

pytestmark = pytest.mark.precision

AS_AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def run_capped(args, **env):
    import os
    return subprocess.run(args, cwd=REPO, env={**os.environ, **AS_AVX2, **env}, capture_output=True, text=True,
                          timeout=300)


def tiny_cnn(seed=0):
    from imdb_sentiment.models import make_embedding
    torch.manual_seed(seed)
    return ConvClassifier(make_embedding(None, 20, 8, False), [2, 3], 8, 0.0, 0.0)


# The caps are x86's (oneDNN's ISA levels, ATen's AVX kernels); an Arm CPU ignores them.
x86_only = pytest.mark.skipif(__import__("platform").machine().lower() not in ("x86_64", "amd64"),
                              reason="ONEDNN_MAX_CPU_ISA and ATEN_CPU_CAPABILITY cap x86 CPUs only")


@x86_only
@pytest.mark.slow  # a subprocess
def test_the_caps_make_any_host_one_without_native_bf16():
    code = ("from imdb_sentiment.device import cpu_has_native_bf16, describe_cpu_bf16; "
            "print(cpu_has_native_bf16()); print(describe_cpu_bf16())")
    result = run_capped([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    native, described = result.stdout.split("\n")[:2]
    assert native == "False"
    assert "AVX2" in described and "no native bf16" in described


@x86_only
@pytest.mark.slow  # a subprocess
def test_bf16_lstm_on_a_cpu_without_native_bf16_is_one_line_before_any_data_loads(tmp_path):
    result = run_capped([sys.executable, "train/lstm.py", "--precision", "bf16", "--data-dir", str(tmp_path)],
                        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "--precision bf16" in lines[0] and "no native bf16" in lines[0] and "--precision fp32" in lines[0]
    assert not (tmp_path / "mlflow.db").exists()  # refused before any run opened (the data dir is empty too)


@pytest.mark.no_native_bf16
def test_bf16_lstm_fit_is_refused_without_native_bf16():
    train, val = loaders()
    with pytest.raises(UserError, match="--precision fp32"):
        fit(tiny_lstm(), train, val, FitSettings(epochs=1, lr=0.02, progress=False, precision="bf16"),
            torch.device("cpu"), forward=forward_batch)


@pytest.mark.no_native_bf16
def test_emulated_bf16_trains_a_cnn_and_says_so_once(capsys, monkeypatch):
    monkeypatch.setattr(devices, "_told_emulated", False)
    train, val = loaders()
    for _ in range(2):
        result = fit(tiny_cnn(), train, val, FitSettings(epochs=20, lr=0.02, patience=0, progress=False,
                                                         precision="bf16"), torch.device("cpu"),
                     forward=forward_batch)
        assert result.precision == "bf16" and result.best_val_acc == 1.0
    assert capsys.readouterr().out.count("emulates bf16") == 1


@pytest.mark.native_bf16
def test_auto_takes_bf16_on_a_cpu_with_native_bf16_for_a_recipe_measured_faster():
    assert devices.resolve_precision("auto", torch.device("cpu"), cpu_bf16_faster=True) == "bf16"


@pytest.mark.no_native_bf16
def test_auto_stays_fp32_on_a_cpu_without_native_bf16():
    assert devices.resolve_precision("auto", torch.device("cpu"), cpu_bf16_faster=True) == "fp32"


def test_validation_picks_the_epoch_in_fp32_as_the_logged_predictions():
    """One validation accuracy a run: the one early stopping and best_val_acc use is the one
    val_predictions.csv (fp32) gives. A CNN, which bf16 runs on every CPU."""
    train, val = loaders()
    model = tiny_cnn()
    seen = []
    model.head[-1].register_forward_hook(lambda module, inputs, output: seen.append((module.training, output.dtype)))
    result = fit(model, train, val, FitSettings(epochs=6, lr=0.01, patience=0, progress=False, precision="bf16"),
                 torch.device("cpu"), forward=forward_batch)
    assert set(seen) == {(True, torch.bfloat16), (False, torch.float32)}
    probs, _ = predict(model, val, forward_batch, torch.device("cpu"))
    assert result.best_val_acc == float(np.mean((probs >= 0.5) == np.asarray(val.dataset.labels)))
