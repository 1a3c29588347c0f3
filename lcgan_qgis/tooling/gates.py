"""Fidelity gates: run every execution path this machine offers over a model's calibration windows, compare each
with the reference (onnxruntime fp32) and write the model's fidelity record ``M.fidelity.json``.

``load_model(precision="auto")`` then runs the fastest path whose record clears the gate
(:mod:`lcgan_qgis.core.model.precision`). The windows are the ones ``quantize`` calibrates on (same raster, count, size
and seed), converted exactly as the engine converts them. Tooling, not runtime: ``python -m lcgan_qgis gates`` (and
``quantize``, which measures them after writing the int8 copy).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..core.errors import DeviceError, ModelFileError
from ..core.model.precision import (
    CPU_ORDER,
    REFERENCE,
    ExecutionPath,
    FidelityRecord,
    fidelity,
    file_digest,
    int8_sibling,
    shown,
    write_record,
)
from ..core.model.runtime import Model, load_model
from .calibration import CALIBRATION_PX, CALIBRATION_WINDOWS, calibration_batches

log = logging.getLogger(__name__)


def measure_gates(model_path: str | Path, calibration_raster: str | Path, windows: int = CALIBRATION_WINDOWS,
                  window_px: int = CALIBRATION_PX, threads: int | None = None,
                  write: bool = True, elevation: str | Path | None = None) -> FidelityRecord:
    """Measure each path's fidelity against the reference on the calibration windows; write the record.

    Every path is loaded first and the windows are run interleaved (window 1 on every path, then window 2...), so
    the seconds per window (median, first window excluded: it compiles) compare paths under the same load. Paths
    this machine cannot run (OpenVINO missing, no BF16, no int8 sibling) or that fail to load are left out of the
    record, and ``auto`` never uses a path that is not in it. A terrain-aware model needs ``elevation``, the DEM
    of the calibration raster (as ``quantize`` does).

    Raises:
        ModelFileError / ContractError: the model is unusable, or the record cannot be written.
        InputRasterError: the calibration raster does not fit the model.
    """
    model_path = Path(model_path)
    models: dict[ExecutionPath, Model] = {}
    try:
        for choice in (REFERENCE, *(p for p in CPU_ORDER if p != REFERENCE)):
            try:
                models[choice] = load_model(model_path, "cpu", threads, precision=choice.precision,
                                            backend=choice.backend)
            except (DeviceError, ModelFileError) as exc:
                if choice == REFERENCE:
                    raise
                log.info("gates: %s not measured: %s", choice.label, exc)
        contract = models[REFERENCE].contract
        batches = list(calibration_batches(contract, calibration_raster, windows, window_px, elevation))
        outputs: dict[ExecutionPath, list[np.ndarray]] = {c: [] for c in models}
        seconds: dict[ExecutionPath, list[float]] = {c: [] for c in models}
        for batch in batches:
            for choice, model in models.items():
                started = time.perf_counter()
                outputs[choice].append(model.run(batch))
                seconds[choice].append(time.perf_counter() - started)
    finally:
        for model in models.values():
            model.close()
    expected = outputs[REFERENCE]
    metric = fidelity(contract, expected, expected)[0]
    paths = {}
    for choice, got in outputs.items():
        value = fidelity(contract, expected, got)[1]
        per_window = float(np.median(seconds[choice][1:] if len(batches) > 1 else seconds[choice]))
        paths[choice.key] = {"value": round(value, 6), "seconds_per_window": round(per_window, 4)}
        log.info("gates: %s %s vs fp32, %.3f s per window", choice.label, shown(metric, value), per_window)
    import onnxruntime

    versions = {"onnxruntime": onnxruntime.__version__}
    if any(c.backend == "openvino" for c in models):
        from ..core.model.openvino_backend import openvino_status

        status = openvino_status()
        versions.update(openvino=status.version, openvino_cpu=status.device_name,
                        openvino_capabilities=" ".join(status.capabilities))
    digests = {model_path.name: file_digest(model_path)}
    sibling = int8_sibling(model_path)
    if sibling.is_file():
        digests[sibling.name] = file_digest(sibling)
    calibration = f"{len(batches)} windows of {window_px} px from {Path(calibration_raster).name}" + (
        f" with the elevation of {Path(elevation).name}" if elevation and contract.terrain is not None else "")
    record = FidelityRecord(model=model_path.name, digests=digests, metric=metric, calibration=calibration,
                            paths=paths, measured_on=versions)
    if write:
        write_record(model_path, record)
    return record


def summary(record: FidelityRecord) -> str:
    """One line per path: fidelity, pass/fail, speed relative to the reference."""
    from ..core.model.precision import passes

    base = record.paths[REFERENCE.key]["seconds_per_window"]
    lines = []
    for key, entry in record.paths.items():
        speed = base / entry["seconds_per_window"] if entry.get("seconds_per_window") else float("nan")
        verdict = "passes" if passes(record.metric, entry["value"]) else "FAILS"
        lines.append(f"  {key:<18} {shown(record.metric, entry['value']):>10}  {verdict:<6}  {speed:.2f}x fp32")
    return "\n".join(lines)
