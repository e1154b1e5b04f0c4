"""Device, dtype and seeds, chosen by detection with a CPU path that always works."""

import os
import random
from contextlib import nullcontext

import numpy as np
import torch

from .errors import UserError


def detect_device(requested: str = "auto") -> torch.device:
    """cuda, then mps, then cpu; a named device that is not there is a user error."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
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


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on GPUs that have it; on CPU mixed precision only slows small models."""
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def device_count(device: torch.device) -> int:
    """How many devices a run occupies, for device-hours (a CPU counts as one)."""
    return 1


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def use_all_cores() -> None:
    """Every core, unless OMP_NUM_THREADS says otherwise (the tests set 1: several small
    processes at once each spinning two OpenMP threads on two cores ran 10x slower)."""
    requested = os.environ.get("OMP_NUM_THREADS", "")
    torch.set_num_threads(int(requested) if requested.isdigit() and int(requested) > 0 else
                          max(1, os.cpu_count() or 1))
