"""Devices, precision and processes: Hugging Face Accelerate under one trainer.

``accelerate launch --multi_gpu --num_processes N`` (or torchrun) runs N data-parallel processes; rank 0
writes the run directory. bf16 autocast is used where the hardware runs it natively.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from taxodiff.errors import TaxodiffError


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively (CPU with AVX512-BF16 or AMX, or a CUDA GPU with bf16). The
    environment's ``TAXODIFF_BF16=0`` says no everywhere: precision ``auto`` then runs float32, as on a CPU
    without bf16 (the whole test suite, say, without a --set on every call)."""
    if os.environ.get("TAXODIFF_BF16", "") == "0":
        return False
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TaxodiffError("--device cuda was asked for but no CUDA GPU is available: allowed here are auto, cpu")
    return torch.device(name)


def make_accelerator(device: str, precision: str) -> Any:
    from accelerate import Accelerator

    dev = resolve_device(device)
    return Accelerator(cpu=dev.type == "cpu", mixed_precision=mixed_precision(dev, precision))


def mixed_precision(device: torch.device, precision: str) -> str:
    """Accelerate's name for the precision a run trains in: ``bf16`` asked for or ``auto`` where native."""
    return "bf16" if precision == "bf16" or (precision == "auto" and bf16_supported(device)) else "no"


def finish_distributed() -> None:
    """End of a multi-process job: wait for every rank, then tear the process group down (no-op alone)."""
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes > 1:
        state.wait_for_everyone()
        state.destroy_process_group()
