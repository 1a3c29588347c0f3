"""Calibration windows: model-ready inputs from seeded windows of a real raster, converted exactly as the engine
converts them; what quantisation (:mod:`.quantize`), the fidelity gates (:mod:`.gates`) and the float16 storage
check (:mod:`.weight_storage`) all measure on."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..core.errors import InputRasterError
from ..core.model.contract import ModelContract
from ..core.rasters.gdal_io import GdalReader
from ..core.rasters.raster import Window, read_valid_mask
from ..core.run.preprocess import plan_input
from ..core.terrain.elevation import ElevationReader, missing_elevation_message, plan_terrain

CALIBRATION_WINDOWS = 8
CALIBRATION_PX = 256


def calibration_windows(width: int, height: int, count: int, size: int, seed: int = 0) -> list[Window]:
    """``count`` windows of ``size`` (clipped to the raster) at seeded random places."""
    rng = np.random.default_rng(seed)
    w, h = min(size, width), min(size, height)
    return [Window(int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h)
            for _ in range(count)]


def calibration_batches(contract: ModelContract, raster: str | Path, count: int = CALIBRATION_WINDOWS,
                        size: int = CALIBRATION_PX, elevation: str | Path | None = None) -> Iterator[np.ndarray]:
    """Model-ready ``(1, C, h, w)`` inputs from windows of ``raster`` (converted exactly as the engine does; a
    terrain-aware model's terrain channels from the DEM ``elevation``)."""
    with GdalReader(raster) as reader, contextlib.ExitStack() as stack:
        plan = plan_input(contract, reader)
        if contract.terrain is not None:
            if elevation is None:
                raise InputRasterError(missing_elevation_message(contract, "to quantise"))
            dem = stack.enter_context(ElevationReader(elevation, reader.info))
            plan = dataclasses.replace(plan, terrain=plan_terrain(contract.terrain, dem, reader.info,
                                                                  fallback_gsd_m=contract.gsd_m)[0])
        multiple = contract.size_multiple_px
        for window in calibration_windows(reader.info.width, reader.info.height, count, size):
            x, _valid = plan.convert(contract, reader.read(window, plan.bands), reader.info.name, window,
                                     read_valid_mask(reader, window, plan.bands))
            h, w = x.shape[1] - x.shape[1] % multiple, x.shape[2] - x.shape[2] % multiple
            yield x[None, :, :h, :w]
