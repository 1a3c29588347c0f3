"""Static int8 quantisation of an lcgan model (QDQ, per-channel weights) calibrated on windows of a real raster.

Tooling, not runtime: it needs the ``onnx`` package (through ``onnxruntime.quantization``), which the plugin does
not ship, so nothing in the engine imports this module. Use ``python -m lcgan_qgis quantize``.

The int8 model keeps the contract metadata, with ``extra.precision = "int8"`` and the source file's name, so the
engine loads it like any lcgan model.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .contract import ModelContract
from .errors import ModelFileError
from .gdal_io import GdalReader
from .preprocess import plan_input
from .raster import Window
from .runtime import load_model

log = logging.getLogger(__name__)

CALIBRATION_WINDOWS = 8
CALIBRATION_PX = 256


def calibration_windows(width: int, height: int, count: int, size: int, seed: int = 0) -> list[Window]:
    """``count`` windows of ``size`` (clipped to the raster) at seeded random places."""
    rng = np.random.default_rng(seed)
    w, h = min(size, width), min(size, height)
    return [Window(int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h)
            for _ in range(count)]


def calibration_batches(contract: ModelContract, raster: str | Path, count: int = CALIBRATION_WINDOWS,
                        size: int = CALIBRATION_PX) -> Iterator[np.ndarray]:
    """Model-ready ``(1, C, h, w)`` inputs from windows of ``raster`` (converted exactly as the engine does)."""
    with GdalReader(raster) as reader:
        plan = plan_input(contract, reader)
        multiple = contract.size_multiple_px
        for window in calibration_windows(reader.info.width, reader.info.height, count, size):
            x, _valid = plan.convert(contract, reader.read(window, plan.bands), reader.info.name)
            h, w = x.shape[1] - x.shape[1] % multiple, x.shape[2] - x.shape[2] % multiple
            yield x[None, :, :h, :w]


def quantize_model(model_path: str | Path, calibration_raster: str | Path, output_path: str | Path,
                   windows: int = CALIBRATION_WINDOWS, window_px: int = CALIBRATION_PX) -> Path:
    """Write an int8 QDQ copy of ``model_path`` calibrated on ``calibration_raster``; returns the output path.

    Raises:
        ModelFileError / ContractError: the source model is unusable.
        InputRasterError: the calibration raster does not fit the model.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = load_model(model_path, "cpu")
    contract = source.contract
    source.close()
    batches = list(calibration_batches(contract, calibration_raster, windows, window_px))

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter([{"input": b} for b in batches])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._items, None)

    output_path = Path(output_path)
    with tempfile.TemporaryDirectory(prefix="lcgan-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(model_path), str(prepared), skip_symbolic_shape=True)
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(str(prepared), str(quantized), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        model = onnx.load(str(quantized))
        extra = dict(contract.extra, precision="int8", quantized_from=Path(model_path).name,
                     calibration=f"{windows} windows of {window_px} px from {Path(calibration_raster).name}")
        metadata = dataclasses.replace(contract, extra=extra).to_metadata()
        del model.metadata_props[:]
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        partial = output_path.with_name(output_path.name + ".partial")
        try:
            onnx.save(model, str(partial))
            os.replace(partial, output_path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ModelFileError(f"Cannot write {output_path}: {exc.strerror or exc}") from None
    log.info("quantised %s -> %s (%.1f MB)", model_path, output_path, output_path.stat().st_size / 1e6)
    return output_path
