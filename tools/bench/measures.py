"""Common measures of the benchmark: time, CPU, load and memory of a call; seam ratio; PSNR; where things are."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LCGAN_BENCH_CACHE", Path.home() / ".cache" / "lcgan" / "bench"))
ZION = REPO.parent / "shared" / "data" / "zion"


def load() -> float:
    """1-minute load average (the CPU is shared: every phase records it)."""
    return round(os.getloadavg()[0], 2)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is not inherited across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run ``fn``; returns its result and wall seconds, process CPU seconds and the load before/after."""
    before, cpu0, t0 = load(), cpu_seconds(), time.perf_counter()
    result = fn()
    return result, {"wall_s": round(time.perf_counter() - t0, 3), "cpu_s": round(cpu_seconds() - cpu0, 3),
                    "load_before": before, "load_after": load()}


def seam_ratio(img: np.ndarray, row_lines: Sequence[int], col_lines: Sequence[int], margin: int = 4) -> float:
    """Mean |difference| between neighbouring pixels across grid lines / the same at least ``margin`` px away.

    ``img`` is ``(bands, rows, cols)``; a column line ``x`` separates columns ``x - 1`` and ``x``.
    """
    data = img.astype(np.float64)
    across, away = [], []
    for axis, lines in ((2, col_lines), (1, row_lines)):
        diff = np.abs(np.diff(data, axis=axis))
        profile = diff.mean(axis=(0, 1) if axis == 2 else (0, 2))  # one value per neighbour pair
        inner = [x for x in lines if 0 < x < data.shape[axis]]
        keep = np.ones(profile.size, bool)
        for x in inner:
            keep[max(0, x - 1 - margin):x + margin] = False
        across.append(profile[[x - 1 for x in inner]])
        away.append(profile[keep])
    return float(np.concatenate(across).mean() / np.concatenate(away).mean())


def grid_lines(starts: Sequence[int], extent: int, length: int) -> list[int]:
    """Every interior window edge and overlap middle of one axis of the engine's grid."""
    lines = set()
    for i, s in enumerate(starts):
        lines.update({s, s + extent})
        if i:
            lines.add((s + starts[i - 1] + extent) // 2)
    return sorted(x for x in lines if 0 < x < length)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else round(10 * np.log10(255.0 ** 2 / mse), 2)


def read(path: Path) -> np.ndarray:
    from osgeo import gdal

    data = gdal.Open(str(path)).ReadAsArray()
    return data[None] if data.ndim == 2 else data
