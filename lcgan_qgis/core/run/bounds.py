"""Bounds on the numbers a user may ask for, from this machine: a value past them is refused before any work with
a message that names the option, the bound and where it comes from, instead of a 7 GiB allocation traceback or
hundreds of processes on two cores.

- the inference window and batch: their estimated memory (:func:`batch_bytes`) must fit in half the memory
  available now, and the window must be at least the smallest one a generator takes (:data:`MIN_WINDOW_PX`);
- local Dask workers: at most :data:`WORKERS_PER_CORE` per core and one per :data:`WORKER_BYTES` of available memory;
- threads: at most :data:`MAX_THREADS` (a remote worker may have many cores, so not this machine's count).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import OptionError

#: Two stride-2 stages and reflection padding need at least 4x4 features at the bottleneck (``tiling.MIN_WINDOW_PX``).
MIN_WINDOW_PX = 16
#: Bytes per pixel of one window while the full-size generator runs it: its input and output channels plus the
#: activations alive at full resolution (64 filters, about four tensors at once, float32), rounded up.
BYTES_PER_WINDOW_PIXEL = 1100
#: A window batch may use at most this share of the memory available when the run starts.
MEMORY_SHARE = 0.5
#: A local worker process: Python, GDAL, onnxruntime, a model and a super-tile's buffers (measured ~0.6-0.9 GB).
WORKER_BYTES = 1_000_000_000
WORKERS_PER_CORE = 2
MAX_THREADS = 1024


@dataclass(frozen=True)
class Machine:
    """What this process may use: cores, and memory available now (bytes)."""

    cores: int
    available_bytes: int


def machine() -> Machine:
    """This machine as the process sees it (CPU affinity; ``MemAvailable``, else physical memory)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        cores = max(1, os.cpu_count() or 1)
    available = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    if not available:
        try:
            available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            available = 8 * 1024**3  # (unknown: assume a modest machine)
    return Machine(cores, available)


def batch_bytes(window_px: int, batch_size: int) -> int:
    """Estimated memory of one inference batch of ``batch_size`` square windows of ``window_px``."""
    return window_px * window_px * batch_size * BYTES_PER_WINDOW_PIXEL


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n < 1e12 else f"{n / 1e12:,.0f} TB"


def check_window(window_px: int, batch_size: int, here: Machine | None = None) -> None:
    """Refuse a window below the smallest a generator takes, or a window and batch whose memory cannot fit.

    Raises:
        OptionError: naming the window (``--window``, ``window_px``), the batch (``--batch``), the estimate and the
            largest window that fits.
    """
    if window_px < MIN_WINDOW_PX:
        raise OptionError(f"The window (--window, window_px) of {window_px} px is below the smallest a generator takes "
                          f"({MIN_WINDOW_PX} px: two stride-2 stages and reflection padding); use {MIN_WINDOW_PX} px "
                          "or more (the default, 512, is a good size).")
    here = here or machine()
    need, budget = batch_bytes(window_px, batch_size), int(here.available_bytes * MEMORY_SHARE)
    if need > budget:
        fits = int((budget / (batch_size * BYTES_PER_WINDOW_PIXEL)) ** 0.5) // 16 * 16
        advice = (f"use --window {fits} or less" if fits >= MIN_WINDOW_PX
                  else "free some memory or lower --batch")
        raise OptionError(f"The window (--window, window_px) of {window_px} px with a batch (--batch, batch_size) of "
                          f"{batch_size} needs about {_gb(need)} of memory ({BYTES_PER_WINDOW_PIXEL} bytes per window "
                          f"pixel while the model runs), more than the {_gb(budget)} this run may use (half of the "
                          f"{_gb(here.available_bytes)} available); {advice}.")


def check_local_workers(workers: int, here: Machine | None = None) -> None:
    """Refuse more local worker processes than this machine's cores and memory can run.

    Raises:
        OptionError: naming ``--local-workers``, the bound and both limits.
    """
    here = here or machine()
    limit = max(1, min(WORKERS_PER_CORE * here.cores, here.available_bytes // WORKER_BYTES))
    if workers > limit:
        raise OptionError(f"--local-workers {workers} is more than this machine can run: at most {limit} "
                          f"({WORKERS_PER_CORE} per core on {here.cores} core(s), and one per {_gb(WORKER_BYTES)} of "
                          f"the {_gb(here.available_bytes)} available). For more workers, start them on other "
                          "machines and give --scheduler.")


def check_threads(threads: int | None, name: str = "threads (--threads)") -> None:
    """Refuse a thread count no machine runs well (a typo like 100000).

    Raises:
        OptionError: naming the option and :data:`MAX_THREADS`.
    """
    if threads is not None and threads > MAX_THREADS:
        raise OptionError(f"{name} {threads} is more than {MAX_THREADS}; give the number of cores to use (this machine "
                          f"has {machine().cores}).")


def check_batch(model: object, batch_size: int) -> None:
    """A model exported with a fixed batch dimension takes exactly that many windows at once.

    Raises:
        OptionError: naming ``--batch`` and the model's fixed batch size.
    """
    session = getattr(model, "session", None)
    try:
        fixed = session.get_inputs()[0].shape[0] if session is not None else None  # type: ignore[union-attr]
    except (AttributeError, IndexError, TypeError):
        return
    if isinstance(fixed, int) and fixed > 0 and fixed != batch_size:
        raise OptionError(f"{getattr(model, 'path', 'The model')} takes exactly {fixed} window(s) per batch (its input "
                          f"was exported with a fixed batch dimension of {fixed}); use --batch {fixed} (batch_size), "
                          f"not {batch_size}.")
