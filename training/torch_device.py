"""The torch device of a training run: device, autocast dtype, memory format and DDP rank, chosen once.

Named ``torch_device`` so it is not confused with the plugin's ``lcgan_qgis.core.model.runtime`` (onnxruntime
providers).
``auto`` picks what measured fastest per device (``docs/bench_train.json``): bf16 autocast on CPU (1.82x less CPU
time per full-size step here) and on CUDA where supported; channels_last only on CUDA (6-8x SLOWER on our CPU).
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from .config import RuntimeConfig
from .errors import TrainingError


@dataclass(frozen=True)
class TorchDevice:
    """Where and how a run computes; ``rank``/``world`` are torchrun's (1 process: 0/1)."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    rank: int = 0
    world: int = 1

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> AbstractContextManager[Any]:
        """The run's one autocast context (a no-op without mixed precision)."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def choose_torch_device(r: RuntimeConfig) -> TorchDevice:
    """Device, autocast dtype and memory format from ``[runtime]`` (and torchrun's environment variables).

    Raises:
        TrainingError: CUDA asked for but not available.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if r.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    elif r.device == "cuda" and world > 1:
        device = torch.device(f"cuda:{local_rank}")
    else:
        try:
            device = torch.device(r.device)
        except (RuntimeError, ValueError):
            raise TrainingError(f"runtime.device={r.device!r} is not a device torch knows; use auto, cpu, cuda or "
                                "cuda:N.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"runtime.device={r.device} but torch sees no CUDA device; use device=cpu.")
        torch.cuda.set_device(device)
    bf16_ok = device.type == "cpu" or torch.cuda.is_bf16_supported()
    amp = r.amp if r.amp != "auto" else ("bf16" if bf16_ok else "none")
    channels_last = r.channels_last == "on" or (r.channels_last == "auto" and device.type == "cuda")
    return TorchDevice(device, torch.bfloat16 if amp == "bf16" else None, channels_last, rank, world)
