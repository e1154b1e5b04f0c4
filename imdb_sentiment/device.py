"""Device, precision, processes and seeds, chosen by detection with a CPU path that always works.

The training loop runs on an `accelerate.Accelerator` (make_accelerator): it
places the model and batches, autocasts, scales fp16 losses, wraps the model
for data parallelism when the script was started by `torchrun` (make
train-<family> NPROC=N), and saves and restores training state.
"""

import gc
import os
import platform
import random
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from .errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def detect_device(requested: str = "auto") -> torch.device:
    """cuda, then mps, then cpu; a named device that is not there is a user error.

    Started by torchrun, each process takes the GPU of its local rank."""
    local_rank = int(os.environ.get("LOCAL_RANK", -1))
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank) if local_rank >= 0 else torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {requested}: no CUDA GPU on this machine (use --device cpu or auto)")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps: MPS is not available here (use --device cpu or auto)")
    try:
        return torch.device(requested)
    except RuntimeError:
        raise UserError(f"--device {requested}: expected auto, cpu, cuda, cuda:N or mps") from None


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (x86 `flags`, Arm `Features`); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA) from which it computes bf16 in hardware.
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
                     "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
                     "AVX10_2_512_AMX_2", "DEFAULT", "ALL")


def _onednn_allows_bf16() -> bool:
    """False when ONEDNN_MAX_CPU_ISA caps oneDNN below its bf16 instructions (AVX2, AVX512_CORE, ...)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "")).strip().upper()
    if cap and cap not in _ONEDNN_BF16_ISAS:
        return False
    try:  # oneDNN's own answer, which honours the cap and the CPU
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 in hardware: x86 with AVX512-BF16 or AMX (and torch
    dispatching its AVX512 kernels, and oneDNN allowed its bf16 instructions), Arm with the BF16
    extension. Elsewhere bf16 is emulated and slower than fp32, and oneDNN has no bf16 LSTM.

    The caps that make a host behave as one without (ATEN_CPU_CAPABILITY=avx2,
    ONEDNN_MAX_CPU_ISA=AVX2: `make test` uses them to test both kinds) are honoured."""
    flags = _cpu_flags()
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    capability = torch.backends.cpu.get_cpu_capability()  # "AVX512", "AVX2", "DEFAULT", ...
    return capability.startswith("AVX512") and bool({"avx512_bf16", "amx_bf16"} & flags) and _onednn_allows_bf16()


def describe_cpu_bf16() -> str:
    """What this CPU does with bf16, for a message: e.g. "AVX2 kernels, no native bf16"."""
    capability = torch.backends.cpu.get_cpu_capability()
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    kernels = f"{capability} kernels" + (f", oneDNN capped at {cap}" if cap else "")
    return f"{kernels}, {'native' if cpu_has_native_bf16() else 'no native'} bf16"


_told_emulated = False


def resolve_precision(requested: str, device: torch.device, cpu_bf16_faster: bool = False,
                      recurrent: bool = False) -> str:
    """fp32, bf16 or fp16 for --precision `requested` on `device`.

    auto: bf16 on GPUs that have it (Ampere and later); fp16 with loss scaling on CUDA GPUs
    that do not (T4, V100, P100); fp32 on MPS; on a CPU bf16 only where the CPU has native
    bf16 and the recipe measured it faster (cpu_bf16_faster, decided per recipe from
    `make bench-precision`), else fp32.

    bf16 asked for on a CPU without native bf16: refused for a network with LSTM layers
    (`recurrent`: oneDNN has no bf16 LSTM there), else emulated, which this says once.
    """
    global _told_emulated
    if requested not in PRECISIONS:
        raise UserError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "fp16" and device.type == "cpu":
        raise UserError("--precision fp16: fp16 with loss scaling needs a GPU; on a CPU use bf16 or fp32")
    if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise UserError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16; "
                        "use fp16 (loss-scaled) or auto")
    if requested == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        if recurrent:
            raise UserError(f"--precision bf16: this CPU ({describe_cpu_bf16()}) cannot run an LSTM in bf16 "
                            "(oneDNN has no emulated bf16 LSTM); use --precision fp32 (or auto)")
        if not _told_emulated and is_main_process():
            print(f"note: this CPU ({describe_cpu_bf16()}) emulates bf16: it trains, slower than fp32",
                  flush=True)
            _told_emulated = True
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    if device.type == "cpu" and cpu_bf16_faster and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def has_lstm(model: torch.nn.Module) -> bool:
    """Whether a network holds LSTM layers (what bf16 on a CPU without native bf16 cannot run)."""
    return any(isinstance(module, torch.nn.LSTM) for module in model.modules())


def autocast(device: torch.device, precision: str):
    """Autocast to `precision` (bf16 or fp16) on `device`; fp32: nothing. For code outside the
    training loop, which has accelerate's."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def world_size() -> int:
    """Processes training this run together (torchrun's WORLD_SIZE; 1 for a plain `python`)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0 opens and logs the MLflow run; the others train and predict their shards."""
    return int(os.environ.get("RANK", "0")) == 0


def device_count(device: torch.device) -> int:
    """How many devices a run occupies, for device-hours: one per process (a CPU counts as one)."""
    return world_size()


def init_processes(device: torch.device):
    """Join the process group when started by torchrun (gloo on CPU, nccl on CUDA); returns
    accelerate's PartialState (one process: a trivial one)."""
    from accelerate import PartialState

    return PartialState(cpu=device.type == "cpu")


def main_process_first():
    """A block the main process runs first, then the others (for caches the first one writes)."""
    if world_size() == 1:
        return nullcontext()
    from accelerate import PartialState

    return PartialState().main_process_first()


def broadcast(value):
    """The main process's `value` on every process."""
    if world_size() == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


def make_accelerator(device: torch.device, precision: str = "fp32", grad_accumulation: int = 1,
                     compile: bool = False):
    """An Accelerator for one fit or predict: device placement, autocast (+ fp16 loss
    scaling), gradient accumulation, DDP when several processes run, torch.compile.

    Accelerate keeps one process-wide state that refuses a second precision; a study or a
    benchmark trains several models in one process, so the state is reset here (not the
    process group of a torchrun run)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import DistributedDataParallelKwargs, TorchDynamoPlugin

    distributed = world_size() > 1
    AcceleratorState._reset_state(reset_partial_state=not distributed)
    GradientState._reset_state()
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    # dynamic: batches differ in length, so one graph serves them all after a few recompiles.
    dynamo = TorchDynamoPlugin(backend="inductor", dynamic=True) if compile else TorchDynamoPlugin(backend="no")
    return Accelerator(cpu=device.type == "cpu", mixed_precision="no" if precision == "fp32" else precision,
                       gradient_accumulation_steps=grad_accumulation, dynamo_plugin=dynamo,
                       step_scheduler_with_optimizer=False,
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)])


def free_memory() -> None:
    """Between runs of one process (a study's trials): Python garbage, then CUDA's cache."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def use_all_cores() -> None:
    """Every core, unless OMP_NUM_THREADS says otherwise (the tests set 1: several small
    processes at once each spinning two OpenMP threads on two cores ran 10x slower;
    torchrun sets 1 per process unless told otherwise)."""
    requested = os.environ.get("OMP_NUM_THREADS", "")
    torch.set_num_threads(int(requested) if requested.isdigit() and int(requested) > 0 else
                          max(1, os.cpu_count() or 1))
