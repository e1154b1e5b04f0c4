"""The shared loop: it learns, evaluates without dropout, keeps order, restores the best epoch;
and batching buckets by length without losing or repeating a review."""

import numpy as np
import pytest
import torch

from imdb_sentiment.batching import BucketBatchSampler, TokenIds, make_loader, pad_batch
from imdb_sentiment.models import forward_batch
from imdb_sentiment.training import FitSettings, fit, predict
from tests.support import loaders, tiny_lstm, toy_data


def test_bucket_sampler_covers_every_item_once_in_similar_lengths():
    lengths = np.random.default_rng(1).integers(1, 500, size=1000)
    sampler = BucketBatchSampler(lengths, batch_size=32, shuffle=True, seed=0)
    batches = list(sampler)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(1000)) and len(batches) == len(sampler)
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 60  # random batches would spread ~450
    sampler.set_epoch(1)
    assert list(sampler) != batches  # a new order each epoch


def test_pad_batch_pads_with_pad_id_and_keeps_lengths():
    dataset = TokenIds([np.array([5, 6, 7]), np.array([8])], [1, 0])
    batch = pad_batch([dataset[0], dataset[1]])
    assert batch["ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["lengths"].tolist() == [3, 1] and batch["index"].tolist() == [0, 1]


def test_a_tiny_model_overfits_a_tiny_set():
    train, val = loaders()
    model = tiny_lstm()
    result = fit(model, train, val, FitSettings(epochs=40, lr=0.02, patience=0, progress=False),
                 torch.device("cpu"), forward=forward_batch)
    assert result.history[-1]["train_acc"] == 1.0
    assert result.best_val_acc == 1.0


def test_predict_is_in_dataset_order_and_without_dropout():
    sequences, labels = toy_data(40)
    model = tiny_lstm(dropout=0.9)
    loader = make_loader(TokenIds(sequences, labels), 7, False, 0)  # batches sorted by length
    first, _ = predict(model, loader, forward_batch, torch.device("cpu"))
    second, _ = predict(model, loader, forward_batch, torch.device("cpu"))
    assert np.array_equal(first, second)  # eval mode: dropout off
    model.eval()
    with torch.no_grad():
        one_by_one = [torch.softmax(model(torch.tensor(s[None], dtype=torch.long),
                                          torch.tensor([len(s)])), -1)[0, 1].item() for s in sequences]
    assert np.allclose(first, one_by_one, atol=1e-5)
    assert model.training is False


def test_best_epoch_weights_are_restored():
    train, val = loaders()
    model = tiny_lstm()
    settings = FitSettings(epochs=6, lr=0.02, patience=0, progress=False)

    def sabotage(epoch, metrics, last):
        if last:  # after the last evaluation: flip every prediction
            with torch.no_grad():
                model.head[-1].weight.mul_(-1)
                model.head[-1].bias.mul_(-1)

    result = fit(model, train, val, settings, torch.device("cpu"), forward=forward_batch, on_epoch=sabotage)
    probs, _ = predict(model, val, forward_batch, torch.device("cpu"))
    assert result.best_val_acc > 0.6
    assert np.mean((probs >= 0.5) == val.dataset.labels) == result.best_val_acc


def test_early_stopping_stops_after_patience():
    train, val = loaders()
    model = tiny_lstm()
    # lr 0: nothing improves after epoch 1, so patience 2 stops at epoch 3
    result = fit(model, train, val, FitSettings(epochs=10, lr=1e-12, patience=2, progress=False),
                 torch.device("cpu"), forward=forward_batch)
    assert len(result.history) == 3 and result.best_epoch == 1


# --- data parallel batching -------------------------------------------------------------

def test_shards_see_every_review_once_in_the_global_batches_of_one_process():
    """Each of N processes takes a slice of the same length-grouped global batches: together
    they cover every item once, take the same number of steps, and a step's slices are
    exactly the batch one process with batch_size x N trains on."""
    lengths = np.random.default_rng(3).integers(1, 400, size=1003)  # not a multiple of any global batch
    for replicas in (2, 3):
        single = BucketBatchSampler(lengths, batch_size=8 * replicas, shuffle=True, seed=5)
        shards = [BucketBatchSampler(lengths, 8, True, seed=5).shard(replicas, rank) for rank in range(replicas)]
        for epoch in (1, 2):
            for sampler in (single, *shards):
                sampler.set_epoch(epoch)
            per_rank = [list(sampler) for sampler in shards]
            assert len({len(batches) for batches in per_rank}) == 1 == len({len(s) for s in shards})
            assert len(per_rank[0]) == len(shards[0])
            assert all(batch for batches in per_rank for batch in batches)  # no process idles a step
            flat = sorted(i for batches in per_rank for batch in batches for i in batch)
            assert flat == list(range(len(lengths)))
            steps = [sorted(i for rank in per_rank for i in rank[step]) for step in range(len(per_rank[0]))]
            assert steps == [sorted(batch) for batch in single]
            spread = np.mean([np.ptp(lengths[b]) for batches in per_rank for b in batches])
            assert spread < 60


def test_a_last_batch_smaller_than_the_processes_joins_another():
    lengths = np.arange(1, 18)  # 17 items, global batch 8 x 2: a last batch of 1
    shards = [BucketBatchSampler(lengths, 8, False, num_replicas=2, rank=rank) for rank in (0, 1)]
    per_rank = [list(sampler) for sampler in shards]
    assert [len(batches) for batches in per_rank] == [1, 1] == [len(s) for s in shards]
    assert sorted(per_rank[0][0] + per_rank[1][0]) == list(range(17))


def test_accelerate_sharding_of_eval_batches_with_gather_for_metrics_gives_each_review_once():
    """What predict relies on for validation and test: accelerate's BatchSamplerShard over our
    length-sorted batches pads the last step with repeated reviews, and gather_for_metrics
    keeps the first `remainder` rows of that step (the rule simulated here, two processes)."""
    from accelerate.data_loader import BatchSamplerShard

    for size, batch in ((61, 8), (5, 8), (64, 8), (3, 256)):
        sampler = BucketBatchSampler(np.random.default_rng(size).integers(1, 99, size), batch, shuffle=False)
        shards = [list(BatchSamplerShard(sampler, 2, rank, even_batches=True)) for rank in (0, 1)]
        assert len(shards[0]) == len(shards[1])
        gathered = []
        for step, (first, second) in enumerate(zip(*shards)):
            rows = first + second
            remainder = size % (batch * 2)
            gathered += rows[:remainder] if step == len(shards[0]) - 1 and remainder else rows
        assert sorted(gathered) == list(range(size))


def test_our_training_batches_are_not_left_to_accelerate_sharding():
    """Why BucketBatchSampler shards itself: accelerate's BatchSamplerShard drops reviews when a
    short batch comes mid-epoch (our shuffled batches put it anywhere)."""
    from accelerate.data_loader import BatchSamplerShard

    lengths = np.random.default_rng(0).integers(1, 300, size=100)
    sampler = BucketBatchSampler(lengths, 8, shuffle=True, seed=0)
    seen = [i for rank in (0, 1) for batch in BatchSamplerShard(sampler, 2, rank) for i in batch]
    assert len(set(seen)) < 100 or len(seen) > 100  # lost or repeated: not each once


# --- precision, accumulation, the non-finite guard ------------------------------------------

@pytest.mark.precision
def test_precision_resolution(monkeypatch):
    from imdb_sentiment import device as devices
    from imdb_sentiment.errors import UserError

    cpu = torch.device("cpu")
    assert devices.resolve_precision("fp32", cpu) == "fp32" and devices.resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(UserError, match="fp16.*GPU"):
        devices.resolve_precision("fp16", cpu)
    assert devices.resolve_precision("auto", cpu, cpu_bf16_faster=False) == "fp32"
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx2", "fma"})
    assert devices.resolve_precision("auto", cpu, cpu_bf16_faster=True) == "fp32"  # emulated bf16: slower
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(devices, "_onednn_allows_bf16", lambda: True)
    if devices.platform.machine().lower() in ("x86_64", "amd64"):
        assert devices.resolve_precision("auto", cpu, cpu_bf16_faster=True) == "bf16"


@pytest.mark.native_bf16  # oneDNN has no bf16 LSTM without it (test_precision_hosts: the refusal there)
def test_bf16_training_autocasts_and_still_learns():
    train, val = loaders()
    model = tiny_lstm()
    dtypes = []  # what the classifier's last layer computes in (the model's output is cast back to fp32)
    model.head[-1].register_forward_hook(lambda module, inputs, output: dtypes.append((module.training,
                                                                                      output.dtype)))
    result = fit(model, train, val, FitSettings(epochs=30, lr=0.02, patience=0, progress=False, precision="bf16"),
                 torch.device("cpu"), forward=forward_batch)
    # Training steps in bf16; validation in fp32, as the test predictions and the logged model.
    assert set(dtypes) == {(True, torch.bfloat16), (False, torch.float32)} and result.precision == "bf16"
    assert result.best_val_acc == 1.0
    assert "forward" not in vars(model)  # accelerate's autocast wrapper is gone: the model pickles as built
    dtypes.clear()
    predict(model, val, forward_batch, torch.device("cpu"))
    assert set(dtypes) == {(False, torch.float32)}  # predict's default: fp32, as the logged model serves


def test_gradient_accumulation_steps_the_optimiser_once_per_group():
    train, val = loaders(40)  # 5 batches of 8
    model = tiny_lstm()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(1))
    fit(model, train, val, FitSettings(epochs=2, lr=0.01, patience=0, progress=False, grad_accumulation=2),
        torch.device("cpu"), forward=forward_batch, optimizer=optimizer)
    assert len(steps) == 2 * 3  # groups of 2, 2 and the last 1, each epoch


def test_a_nan_loss_stops_with_the_epoch_and_step():
    from imdb_sentiment.errors import UserError
    from imdb_sentiment.training import NonFiniteLoss

    train, val = loaders()
    calls = []

    def compute_loss(model, batch):
        calls.append(1)
        logits = forward_batch(model, batch)
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
        return (loss * float("nan") if len(calls) == 7 else loss), logits  # epoch 2, step 3

    with pytest.raises(NonFiniteLoss, match="epoch 2, step 3") as raised:
        fit(tiny_lstm(), train, val, FitSettings(epochs=3, lr=0.01, patience=0, progress=False),
            torch.device("cpu"), forward=forward_batch, compute_loss=compute_loss)
    assert isinstance(raised.value, UserError) and (raised.value.epoch, raised.value.step) == (2, 3)
    assert len(calls) == 7  # nothing ran after it


# --- checkpoints --------------------------------------------------------------------------

def test_a_run_stopped_after_an_epoch_resumes_to_the_same_model(tmp_path):
    """Dropout on, so the RNG states matter too: resumed, the second epoch is the one the
    uninterrupted run trained, to the bit."""
    train, val = loaders(48)
    settings = FitSettings(epochs=3, lr=0.01, patience=0, progress=False)

    whole = tiny_lstm(dropout=0.3)
    fit(whole, train, val, settings, torch.device("cpu"), forward=forward_batch)
    expected, _ = predict(whole, val, forward_batch, torch.device("cpu"))

    def stop(epoch, metrics, last):
        if epoch == 1:
            raise KeyboardInterrupt

    folder = tmp_path / "checkpoints"
    first = tiny_lstm(dropout=0.3)
    with pytest.raises(KeyboardInterrupt):
        fit(first, train, val, FitSettings(**{**vars(settings), "checkpoint_dir": str(folder)}),
            torch.device("cpu"), forward=forward_batch, on_epoch=stop)
    torch.manual_seed(123)  # another process, other RNG states
    resumed = tiny_lstm(dropout=0.3, seed=7)  # other initial weights: the checkpoint's replace them
    result = fit(resumed, train, val, FitSettings(**{**vars(settings), "checkpoint_dir": str(folder),
                                                    "resume_checkpoint": True}),
                 torch.device("cpu"), forward=forward_batch)
    assert [len(result.history), result.earlier_seconds > 0] == [3, True]
    probs, _ = predict(resumed, val, forward_batch, torch.device("cpu"))
    np.testing.assert_array_equal(probs, expected)


# --- the GPU check and the precision benchmark --------------------------------------------

def load_bench(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_without_cuda_says_so_in_one_line(monkeypatch, capsys):
    gpu_check = load_bench("gpu_check")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    assert capsys.readouterr().out.strip().splitlines() == [
        f"gpu-check: no CUDA GPU on this machine (torch {torch.__version__}); nothing to check"]


def test_gpu_check_tabulates_each_check_and_fails_if_one_did(monkeypatch, capsys):
    gpu_check = load_bench("gpu_check")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "Test GPU")

    def skipped():
        raise gpu_check.Skipped("1 GPU")

    def broken():
        raise RuntimeError("CUDA error: out of memory\nmore detail")

    monkeypatch.setattr(gpu_check, "checks", lambda config: [("fast", lambda: "12.0 ms/batch"), ("ddp", skipped),
                                                               ("bits", broken)])
    assert gpu_check.main([]) == 1
    table = capsys.readouterr().out.split("\ncheck")[1].splitlines()[1:]
    assert [row.split()[:2] for row in table] == [["fast", "ok"], ["ddp", "skipped"], ["bits", "FAILED"]]
    assert table[0].endswith("12.0 ms/batch") and table[2].endswith("RuntimeError: CUDA error: out of memory")


@pytest.mark.slow
def test_make_gpu_check_on_a_machine_without_cuda():
    from tests.support import run_make

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs the real checks (minutes): make gpu-check")
    result = run_make("gpu-check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("gpu-check: no CUDA GPU on this machine")


@pytest.mark.slow
@pytest.mark.precision
def test_make_bench_precision_compares_fp32_and_bf16(tiny_data_dir, mlflow_store):
    from mlflow.tracking import MlflowClient

    from tests.support import run_make

    result = run_make("bench-precision", f"ARGS=--data-dir {tiny_data_dir} --limit 60")
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout.split("vs fp32\n")[1].strip().splitlines()
    assert [row.split()[:2] for row in table] == [["minilm", "fp32"], ["minilm", "bf16"], ["lstm", "fp32"],
                                                  ["lstm", "bf16"]]
    from imdb_sentiment.device import cpu_has_native_bf16
    native = cpu_has_native_bf16()  # this process runs under the caps `make test-as-avx2` sets, as the bench
    assert ("refused on this CPU" in table[3]) != native  # no bf16 LSTM without native bf16, and a row says so
    client = MlflowClient(mlflow_store)
    [run] = client.search_runs([client.get_experiment_by_name("test").experiment_id],
                               "tags.benchmark = 'precision'")
    assert run.info.status == "FINISHED"
    for name in ("minilm", "lstm"):
        assert 0 <= run.data.metrics[f"{name}_fp32_test_acc"] <= 1
        assert (f"{name}_bf16_speedup" in run.data.metrics) == (native or name == "minilm")
    assert run.data.metrics["minilm_bf16_speedup"] > 0


@pytest.mark.slow
def test_compile_runs_the_model_through_torch_compile(tmp_path, monkeypatch):
    import torch._dynamo

    # A cache of its own: inductor's cache key leaves out ATEN_CPU_CAPABILITY, so kernels that a run
    # capped to AVX2 left in the shared cache abort an uncapped process that loads them.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch._dynamo.reset()
    train, val = loaders()
    model = tiny_lstm()
    result = fit(model, train, val, FitSettings(epochs=20, lr=0.02, patience=0, progress=False, compile=True),
                 torch.device("cpu"), forward=forward_batch)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # compiled graphs ran
    assert result.best_val_acc > 0.9 and type(model).__name__ == "RecurrentClassifier"


def test_adamw_decays_matrices_and_exempts_biases_and_norm_weights():
    """The BERT recipe and HF's Trainer leave biases and LayerNorm weights undecayed."""
    from imdb_sentiment.training import make_optimizer

    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    model[0].weight.requires_grad_(False)  # frozen weights are not optimised at all
    optimizer = make_optimizer(model, FitSettings(epochs=1, lr=0.1, weight_decay=0.01), torch.device("cpu"))
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert decay == {id(model[1].weight): 0.01, id(model[1].bias): 0.0, id(model[2].weight): 0.0,
                     id(model[2].bias): 0.0}
