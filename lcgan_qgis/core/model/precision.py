"""Execution paths (backend x precision), their fidelity gates, and the order ``auto`` tries them in.

The one place that says which inference paths exist and which one a model gets. It imports neither onnxruntime nor
OpenVINO, so the plugin's widgets and Processing parameters can list the choices before either is installed.

A path is a backend (``onnxruntime`` or ``openvino``) and a precision (``fp32``, ``bf16``, ``int8``; int8 runs the
model's QDQ sibling ``M.int8.onnx``). The reference is onnxruntime fp32: "our fp32 path". ``auto`` runs the fastest
available path whose **fidelity record** shows it keeps at least :data:`MIN_CLASS_AGREEMENT` of land-cover pixels,
or :data:`MIN_PSNR_DB` for imagery, against the reference on the model's calibration windows (``M.fidelity.json``,
written by ``python -m lcgan_qgis quantize`` or ``... gates``); without a record it runs the reference. An explicit
precision or backend is obeyed without gates (a failing gate is still mentioned).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..choices import BACKEND_LABELS, BACKENDS, PRECISIONS, check_choice
from ..errors import DeviceError, ModelFileError, OutputError
from ..storage.files import AtomicFile
from .contract import Direction, ModelContract

ONNXRUNTIME, OPENVINO = BACKENDS[1:]  # (the choices, their order and labels: core/choices.py)
#: Fidelity gates of ``auto`` against the reference on the calibration windows (issue 12).
MIN_CLASS_AGREEMENT = 0.99
MIN_PSNR_DB = 35.0
RECORD_FORMAT = 1


@dataclass(frozen=True)
class ExecutionPath:
    """One way to run a model: a backend and a precision."""

    backend: str
    precision: str

    @property
    def key(self) -> str:
        """``"openvino/int8"``: the key in fidelity records."""
        return f"{self.backend}/{self.precision}"

    @property
    def label(self) -> str:
        return f"{BACKEND_LABELS[self.backend]} {self.precision}"

    @property
    def int8_file(self) -> bool:
        """Whether the path runs the int8 sibling rather than the float model."""
        return self.precision == "int8"


REFERENCE = ExecutionPath(ONNXRUNTIME, "fp32")
#: What ``auto`` tries on a CPU, fastest first (the speeds that set this order: docs/engine.md, "Backends").
CPU_ORDER = (ExecutionPath(OPENVINO, "int8"), ExecutionPath(OPENVINO, "bf16"), ExecutionPath(ONNXRUNTIME, "int8"),
             ExecutionPath(OPENVINO, "fp32"), REFERENCE)
#: On CUDA only onnxruntime runs (OpenVINO is used on the CPU); ``auto`` keeps fp32 there.
CUDA_ORDER = (REFERENCE, ExecutionPath(ONNXRUNTIME, "int8"))


def int8_sibling(path: str | Path) -> Path:
    """Where the int8 copy of a model lives: ``M.onnx`` -> ``M.int8.onnx`` (written by ``lcgan_qgis quantize``)."""
    path = Path(path)
    return path.with_name(path.name[:-5] + ".int8.onnx" if path.name.endswith(".onnx") else path.name + ".int8.onnx")


def record_path(path: str | Path) -> Path:
    """Where a model's fidelity record lives: ``M.onnx`` -> ``M.fidelity.json``."""
    path = Path(path)
    return path.with_name((path.name[:-5] if path.name.endswith(".onnx") else path.name) + ".fidelity.json")


# -- fidelity -------------------------------------------------------------------------------------------------------
def gate(contract: ModelContract) -> tuple[str, float]:
    """``(metric, threshold)`` of the gate for this model's output kind."""
    if contract.direction is Direction.RGB_TO_LANDCOVER:
        return "class_agreement", MIN_CLASS_AGREEMENT
    return "psnr_db", MIN_PSNR_DB


def fidelity(contract: ModelContract, reference: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> tuple[str, float]:
    """``("class_agreement", fraction)`` for land-cover output, ``("psnr_db", dB)`` on the 0-255 scale for imagery."""
    ref, out = np.concatenate(list(reference)), np.concatenate(list(got))
    if contract.direction is Direction.RGB_TO_LANDCOVER:
        return "class_agreement", float((ref.argmax(axis=1) == out.argmax(axis=1)).mean())
    mse = float(np.mean(((np.clip(ref, -1, 1) - np.clip(out, -1, 1)) * 127.5) ** 2))
    return "psnr_db", float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def passes(metric: str, value: float) -> bool:
    """Whether a measured fidelity clears the gate (the thresholds are the core's, not the record's)."""
    threshold = MIN_CLASS_AGREEMENT if metric == "class_agreement" else MIN_PSNR_DB
    return value >= threshold


def shown(metric: str, value: float) -> str:
    """``"99.12 %"`` or ``"41.3 dB"``."""
    if metric == "class_agreement":
        return f"{value:.2%}".replace("%", " %")
    return "inf dB" if math.isinf(value) else f"{value:.1f} dB"


def file_digest(path: Path) -> str:
    """sha256 of a file (a record belongs to exactly the files it was measured on)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FidelityRecord:
    """Each path's fidelity against the reference on a model's calibration windows (``M.fidelity.json``).

    Attributes:
        model: the float model's file name.
        digests: sha256 of every file measured (the float model and, when it existed, the int8 sibling).
        metric: ``class_agreement`` (fraction of pixels whose class matches) or ``psnr_db``.
        calibration: which windows were used.
        paths: ``{"openvino/int8": {"value": 0.993, "seconds_per_window": 0.41}, ...}``.
        measured_on: the CPU and library versions.
    """

    model: str
    digests: dict[str, str]
    metric: str
    calibration: str
    paths: dict[str, dict[str, float]]
    measured_on: dict[str, str] = field(default_factory=dict)

    def value(self, path: ExecutionPath) -> float | None:
        entry = self.paths.get(path.key)
        return None if entry is None else float(entry["value"])

    def to_json(self) -> str:
        data: dict[str, Any] = {"format": RECORD_FORMAT, "model": self.model, "digests": self.digests,
                                "metric": self.metric, "gate": MIN_CLASS_AGREEMENT if self.metric == "class_agreement"
                                else MIN_PSNR_DB, "calibration": self.calibration, "measured_on": self.measured_on,
                                "paths": {k: {**v, "passes": passes(self.metric, v["value"])}
                                          for k, v in self.paths.items()}}
        return json.dumps(data, indent=2, allow_nan=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> FidelityRecord:
        try:
            data = json.loads(text)
            if data.get("format") != RECORD_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {RECORD_FORMAT}")
            paths = {str(k): {"value": float(v["value"]), **{n: float(x) for n, x in v.items()
                                                             if n not in ("value", "passes")}}
                     for k, v in data["paths"].items()}
            return cls(model=str(data["model"]), digests={str(k): str(v) for k, v in data["digests"].items()},
                       metric=str(data["metric"]), calibration=str(data.get("calibration", "")), paths=paths,
                       measured_on={str(k): str(v) for k, v in data.get("measured_on", {}).items()})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelFileError(f"The fidelity record {source} is not valid ({exc}); delete it or re-create it "
                                 "with `python -m lcgan_qgis gates`.") from None


def write_record(model_path: str | Path, record: FidelityRecord) -> Path:
    """Write ``M.fidelity.json`` next to the model (all or nothing:
    :class:`~lcgan_qgis.core.storage.files.AtomicFile`)."""
    target = record_path(model_path)
    try:
        with AtomicFile(target) as tmp:
            tmp.write_text(record.to_json(), encoding="utf-8")
    except OutputError as exc:
        raise ModelFileError(f"Cannot write the fidelity record {target}: {exc}") from None
    except OSError as exc:
        raise ModelFileError(f"Cannot write the fidelity record {target}: {exc.strerror or exc}") from None
    return target


def read_record(model_path: str | Path) -> tuple[FidelityRecord | None, str | None]:
    """The model's fidelity record, or None and a one-line note (absent notes are None: nothing to say).

    A record measured on other files (the model or its int8 sibling was replaced) is stale: for the float model the
    whole record is ignored; for the int8 sibling only its int8 entries are.
    """
    model_path = Path(model_path)
    source = record_path(model_path)
    if not source.is_file():
        return None, None
    try:
        record = FidelityRecord.from_json(source.read_text(encoding="utf-8"), str(source))
    except (OSError, UnicodeDecodeError, ModelFileError) as exc:
        return None, f"Ignored {source.name}: {exc}"
    if record.digests.get(model_path.name) != file_digest(model_path):
        return None, f"Ignored {source.name}: it was measured on another {model_path.name}; re-create it."
    sibling = int8_sibling(model_path)
    int8_digest = record.digests.get(sibling.name)
    if sibling.is_file() and int8_digest is not None and int8_digest != file_digest(sibling):
        kept = {k: v for k, v in record.paths.items() if not k.endswith("/int8")}
        return (FidelityRecord(record.model, record.digests, record.metric, record.calibration, kept,
                               record.measured_on),
                f"Ignored the int8 entries of {source.name}: {sibling.name} changed since; re-create the record.")
    return record, None


# -- the plan -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Capabilities:
    """What this machine offers: the device chosen (CPU or CUDA), OpenVINO (None when usable, else why not),
    whether OpenVINO's CPU plugin reports BF16, and whether the model has an int8 sibling."""

    on_cuda: bool
    openvino_missing: str | None
    bf16: bool
    has_int8: bool


def plan_paths(precision: str, backend: str, caps: Capabilities, record: FidelityRecord | None,
               model_name: str = "the model") -> tuple[list[ExecutionPath], list[str]]:
    """The paths to try, in order, and notes for the user (one line each).

    Raises:
        DeviceError: unknown choice, or an explicit precision/backend this machine cannot offer (says why).
        ModelFileError: ``precision="int8"`` without an int8 sibling.
    """
    check_choice("precision", precision, PRECISIONS)
    check_choice("backend", backend, BACKENDS)
    if backend == OPENVINO and caps.on_cuda:
        raise DeviceError("OpenVINO runs on the CPU in lcgan; choose device 'cpu' (or 'auto'), or backend "
                          "'onnxruntime' for CUDA.")
    if backend == OPENVINO and caps.openvino_missing:
        raise DeviceError(f"OpenVINO was requested but cannot be used: {caps.openvino_missing}.")
    if precision == "bf16":
        if caps.on_cuda or backend == ONNXRUNTIME:
            raise DeviceError("bf16 runs only with OpenVINO on the CPU (onnxruntime has no bf16 convolutions on "
                              "x86-64); choose fp32 or int8, or backend 'openvino' on device 'cpu'.")
        if caps.openvino_missing:
            raise DeviceError(f"bf16 needs OpenVINO, which cannot be used: {caps.openvino_missing}.")
        if not caps.bf16:
            raise DeviceError("bf16 needs a CPU that OpenVINO reports BF16 support for, and this one does not; "
                              "choose fp32 or int8.")
    if precision == "int8" and not caps.has_int8:
        raise ModelFileError(f"No int8 model next to {model_name}; create it with `python -m lcgan_qgis quantize`.")
    order = CUDA_ORDER if caps.on_cuda else CPU_ORDER
    notes: list[str] = []
    available = [p for p in order if (backend == "auto" or p.backend == backend)
                 and (p.backend != OPENVINO or not caps.openvino_missing)
                 and (p.precision != "bf16" or caps.bf16) and (not p.int8_file or caps.has_int8)]
    if precision != "auto":
        return [p for p in available if p.precision == precision], notes
    if caps.on_cuda:
        return [REFERENCE], notes
    if caps.openvino_missing and backend == "auto":
        notes.append(f"OpenVINO is not available ({caps.openvino_missing}), so onnxruntime runs; the optional "
                     "OpenVINO package (the plugin's dependency dialog) is usually faster on a CPU.")
    floor = REFERENCE if backend != OPENVINO else ExecutionPath(OPENVINO, "fp32")  # needs no gate
    chosen: list[ExecutionPath] = []
    skipped: list[str] = []
    for path in available:
        if path == floor:
            continue
        value = record.value(path) if record else None
        if value is None:
            continue
        if passes(record.metric, value):  # type: ignore[union-attr]
            chosen.append(path)
        else:
            skipped.append(f"{path.label} ({shown(record.metric, value)})")  # type: ignore[union-attr]
    if skipped:
        metric, limit = ("class agreement", f"{MIN_CLASS_AGREEMENT:.0%}") if record and \
            record.metric == "class_agreement" else ("PSNR", f"{MIN_PSNR_DB:g} dB")
        notes.append(f"Fidelity gate ({metric} >= {limit} vs fp32 on the calibration windows) not met by: "
                     + ", ".join(skipped) + ".")
    if record is None and len(available) > 1:
        notes.append(f"{model_name} has no fidelity record, so {floor.label} runs; "
                     "`python -m lcgan_qgis gates` measures one and lets auto use faster paths.")
    return [*chosen, floor], notes
