"""Half-precision storage of a model's weights: float16 initializers, each read through a Cast to float32.

Why: a generator of the bundled size (ngf 32, 2.87 M parameters) is 11.6 MB in float32 and 5.9 MB stored as
float16, which is what keeps the plugin zip with three generators and their int8 copies under plugins.qgis.org's
25 MB upload limit.

What stays: the graph's input and output (float32), every operator (each computes in float32 as before), and the
metadata, so the model contract is unchanged byte for byte. Each weight is rounded once to the nearest float16
(relative error at most 2^-11); the fidelity this costs is measured by :func:`convert_file` (docs/engine.md,
"Weight storage"). onnxruntime folds the Casts at session creation (constant folding), so a session holds float32
weights and runs the same kernels; OpenVINO reads the Casts as compressed constants and computes in the precision it
is asked for.

Converted: float32 initializers of at least :data:`MIN_ELEMENTS` values (the convolution weights, 99.9 % of the
bytes) whose values float16 can hold; biases, norm parameters and quantisation scales stay float32. An int8 (QDQ)
model's float layers (first and last convolution, the upsampling path) are converted the same way; its int8
weights are already small.

Tooling, not runtime: it needs ``onnx``. Use ``python -m lcgan_qgis weights`` or ``python -m training export
--weight-storage fp16``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.choices import WEIGHT_STORAGES
from ..core.errors import LcganError, ModelFileError, OptionError, OutputError
from ..core.model.contract import Direction, ModelContract
from ..core.model.precision import FidelityRecord, fidelity, file_digest, passes, record_path, shown
from ..core.model.runtime import load_model
from ..core.storage.files import AtomicFile
from .calibration import CALIBRATION_PX, CALIBRATION_WINDOWS, calibration_batches

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

#: Smallest initializer stored as float16 (smaller ones are 0.1 % of a generator's bytes, and quantisation scales
#: and zero points of an int8 model are among them).
MIN_ELEMENTS = 1024
FP16_SUFFIX = "_fp16"
#: Side of the random input :func:`convert_file` checks a conversion on when no calibration raster is given.
RANDOM_CHECK_PX = 128
METRIC_NAMES = {"class_agreement": "class agreement", "psnr_db": "PSNR"}


def _elements(init: onnx.TensorProto) -> int:
    return int(np.prod(init.dims)) if init.dims else 1


def _unique(name: str, taken: set[str]) -> str:
    candidate, i = name, 1
    while candidate in taken:
        candidate, i = f"{name}_{i}", i + 1
    taken.add(candidate)
    return candidate


def store_fp16(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` whose large float32 initializers are float16, each followed by a Cast to float32 named
    as the initializer was (so every consumer reads float32 as before); returns it and how many were converted."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    inputs = {value.name for value in graph.input}  # an initializer that is also an input can be overridden
    taken = {init.name for init in graph.initializer} | inputs | {o for node in graph.node for o in node.output}
    initializers, casts = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or init.name in inputs or _elements(init) < MIN_ELEMENTS:
            initializers.append(init)
            continue
        with np.errstate(over="ignore"):
            half = numpy_helper.to_array(init).astype(np.float16)
        if not np.isfinite(half).all():  # beyond float16's range (|x| > 65504), or NaN already: kept as it is
            initializers.append(init)
            continue
        name = _unique(init.name + FP16_SUFFIX, taken)
        initializers.append(numpy_helper.from_array(half, name))
        casts.append(helper.make_node("Cast", [name], [init.name], name=_unique(name + "/to_float", taken),
                                      to=TensorProto.FLOAT))
    if casts:
        del graph.initializer[:]
        graph.initializer.extend(initializers)
        nodes = casts + list(graph.node)  # (the Casts first: the graph stays topologically sorted)
        del graph.node[:]
        graph.node.extend(nodes)
    return result, len(casts)


def _casts_from_fp16(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    """The Casts to float32 of float16 initializers (what :func:`store_fp16` adds), by output name."""
    from onnx import TensorProto

    halves = {init.name for init in graph.initializer if init.data_type == TensorProto.FLOAT16}
    halves -= {value.name for value in graph.input}
    outputs = {value.name for value in graph.output}
    found = {}
    for node in graph.node:
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if (node.op_type == "Cast" and to == TensorProto.FLOAT and len(node.input) == 1 and node.input[0] in halves
                and node.output[0] not in outputs):
            found[node.output[0]] = node
    return found


def restore_fp32(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` whose float16-stored weights (initializer + Cast to float32) are float32 initializers
    again, with the float16 values; returns it and how many were restored (what int8 quantisation needs: it
    finds a convolution's weights only as initializers)."""
    import onnx
    from onnx import numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    casts = _casts_from_fp16(graph)
    if not casts:
        return result, 0
    sources = {init.name: init for init in graph.initializer}
    uses = Counter(name for node in graph.node for name in node.input)
    restored = []
    for output, node in casts.items():
        restored.append(numpy_helper.from_array(numpy_helper.to_array(sources[node.input[0]]).astype(np.float32),
                                                output))
        uses[node.input[0]] -= 1
    dropped = {node.input[0] for node in casts.values() if uses[node.input[0]] <= 0}
    nodes = [node for node in graph.node if not (node.op_type == "Cast" and node.output[0] in casts)]
    initializers = [init for init in graph.initializer if init.name not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers + restored)
    return result, len(restored)


def weight_storage(model: onnx.ModelProto) -> str:
    """``"fp16"`` when the model stores weights as float16 (read through Casts), else ``"fp32"``."""
    return "fp16" if _casts_from_fp16(model.graph) else "fp32"


#: Conversion to each storage: ``(model) -> (converted copy, tensors converted)``.
CONVERSIONS: dict[str, Callable[[onnx.ModelProto], tuple[onnx.ModelProto, int]]] = {
    "fp16": store_fp16,
    "fp32": restore_fp32,
}


def with_storage(model: onnx.ModelProto, storage: str) -> tuple[onnx.ModelProto, int]:
    """``model`` converted to ``storage`` (one of :data:`~lcgan_qgis.core.choices.WEIGHT_STORAGES`).

    Raises:
        OptionError: an unknown storage (the message lists the choices).
    """
    check_storage(storage)
    return CONVERSIONS[storage](model)


def check_storage(storage: str) -> None:
    """Raise :class:`OptionError` listing the choices when ``storage`` is not a weight storage."""
    if storage not in WEIGHT_STORAGES:
        raise OptionError(f"Unknown weight storage {storage!r}; choose one of: {', '.join(WEIGHT_STORAGES)}.")


def random_input(contract: ModelContract, side_px: int = RANDOM_CHECK_PX, seed: int = 0) -> np.ndarray:
    """A ``(2, C, side, side)`` input of the model's kind: one-hot classes (+ terrain in [-1, 1] + noise) for
    land cover -> RGB, values in [-1, 1] for imagery."""
    rng = np.random.default_rng(seed)
    side = side_px - side_px % contract.size_multiple_px
    if contract.direction is Direction.RGB_TO_LANDCOVER:
        return rng.uniform(-1, 1, (2, contract.in_channels, side, side)).astype(np.float32)
    classes = np.eye(contract.num_classes, dtype=np.float32)[rng.integers(0, contract.num_classes, (2, side, side))]
    terrain = rng.uniform(-1, 1, (2, side, side, contract.terrain_channels)).astype(np.float32)
    noise = rng.standard_normal((2, side, side, contract.noise_channels)).astype(np.float32)
    return np.concatenate([classes, terrain, noise], axis=-1).transpose(0, 3, 1, 2).copy()


@dataclass(frozen=True)
class StorageReport:
    """What :func:`convert_file` did and how closely the converted model follows the file as it was.

    Attributes:
        path: the model file.
        storage: the storage asked for.
        tensors: initializers converted (0: the file already had that storage and was left alone).
        bytes_before / bytes_after: file sizes.
        max_abs_diff: largest output difference to the file as it was, on ``checked_on``.
        checked_on: which inputs were compared.
        metric / value: the fidelity gate's metric and value on the calibration windows (None without them).
        stale_records: fidelity records that measured the file as it was (they no longer apply to it).
    """

    path: Path
    storage: str
    tensors: int
    bytes_before: int
    bytes_after: int
    max_abs_diff: float
    checked_on: str
    metric: str | None = None
    value: float | None = None
    stale_records: tuple[Path, ...] = ()

    @property
    def summary(self) -> str:
        if not self.tensors:
            return f"{self.path}: already stores its weights as {self.storage}; left unchanged"
        measured = f"{METRIC_NAMES[self.metric]} {shown(self.metric, self.value)}, " if self.metric else ""
        return (f"{self.path}: {self.tensors} weight tensors stored as {self.storage}, "
                f"{self.bytes_before / 1e6:.1f} -> {self.bytes_after / 1e6:.1f} MB; vs the previous file "
                f"{measured}max |diff| {self.max_abs_diff:.2e} on {self.checked_on}")


def convert_file(path: str | Path, storage: str, calibration: str | Path | None = None,
                 elevation: str | Path | None = None, windows: int | None = None,
                 window_px: int | None = None) -> StorageReport:
    """Convert the model file ``path`` to ``storage`` in place, all or nothing.

    The converted model is written under a temporary name, loaded by the runtime (contract and graph checks) and run
    against the file as it was on the calibration windows of ``calibration`` (those ``quantize`` and ``gates`` use;
    a terrain-aware model also needs the DEM ``elevation``), or on a random input without one. Only then does it
    replace ``path``. A fidelity record (``M.fidelity.json``) names the sha256 of the files it measured, so one
    that measured ``path`` no longer applies to it (``StorageReport.stale_records``): re-measure it with
    ``python -m lcgan_qgis gates``.

    Raises:
        OptionError: unknown ``storage``.
        ModelFileError / ContractError: ``path`` is missing, not ONNX or not an lcgan model; or, on the calibration
            windows, the converted model fails the fidelity gate (``path`` is left as it was).
        InputRasterError: the calibration raster (or DEM) does not fit the model.
        OutputError: the folder cannot be written (``path`` is left as it was).
    """
    import onnx

    check_storage(storage)
    path = Path(path)
    with load_model(path, "cpu", precision="fp32", backend="onnxruntime") as reference:  # checks file and contract
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # (onnx raises DecodeError, ValueError...; onnxruntime read the file already)
            raise ModelFileError(f"Cannot read {path} with onnx: {exc}") from None
        converted, tensors = with_storage(model, storage)
        before = path.stat().st_size
        if not tensors:
            return StorageReport(path, storage, 0, before, before, 0.0, "nothing (unchanged)")
        contract = reference.contract
        if calibration is not None:
            count, size = windows or CALIBRATION_WINDOWS, window_px or CALIBRATION_PX
            batches = list(calibration_batches(contract, calibration, count, size, elevation))
            checked_on = f"{len(batches)} windows of {size} px from {Path(calibration).name}"
        else:
            batches = [random_input(contract)]
            checked_on = f"a random {' x '.join(map(str, batches[0].shape))} input"
        expected = [reference.run(batch) for batch in batches]
    data = converted.SerializeToString()
    stale = records_naming(path)
    try:
        with AtomicFile(path) as tmp:
            tmp.write_bytes(data)
            with load_model(tmp, "cpu", precision="fp32", backend="onnxruntime") as candidate:
                got = [candidate.run(batch) for batch in batches]
            diff = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
            metric, value = fidelity(contract, expected, got) if calibration is not None else (None, None)
            if metric is not None and not passes(metric, value):
                raise ModelFileError(f"{path}: with its weights stored as {storage} the model's "
                                     f"{METRIC_NAMES[metric]} against the file as it is would be "
                                     f"{shown(metric, value)} on {checked_on}, below the fidelity gate; the file "
                                     "is left unchanged.")
    except LcganError:
        raise
    except OSError as exc:  # (the disk filled up while writing: AtomicFile removed the partial file)
        raise OutputError(f"Cannot write {path}: {exc.strerror or exc}") from None
    report = StorageReport(path, storage, tensors, before, len(data), diff, checked_on, metric, value, stale)
    log.info("%s", report.summary)
    return report


def records_naming(path: Path) -> tuple[Path, ...]:
    """The fidelity records beside ``path`` that measured it as it is now (``M.fidelity.json`` of ``M.onnx``, also of
    its int8 sibling ``M.int8.onnx``)."""
    models = [path] + ([path.with_name(path.name[:-len(".int8.onnx")] + ".onnx")]
                       if path.name.endswith(".int8.onnx") else [])
    found, digest = [], file_digest(path)
    for model in models:
        source = record_path(model)
        try:
            record = FidelityRecord.from_json(source.read_text(encoding="utf-8"), str(source))
        except (OSError, UnicodeDecodeError, ModelFileError):
            continue
        if record.digests.get(path.name) == digest:
            found.append(source)
    return tuple(found)
