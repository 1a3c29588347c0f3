"""Static int8 quantisation of an lcgan model (QDQ, per-channel weights) calibrated on windows of a real raster.

Tooling, not runtime: it needs the ``onnx`` package (through ``onnxruntime.quantization``), which the plugin does
not ship, so nothing in the engine imports this module. Use ``python -m lcgan_qgis quantize``.

The int8 model keeps the contract metadata, with ``extra.precision = "int8"`` and the source file's name, so the
engine loads it like any lcgan model. A source whose weights are stored as float16 (:mod:`.weight_storage`) is
quantised from its float16 values (restored to float32 initializers in memory: the quantiser finds weights only as
initializers), and by default the int8 copy stores its float layers the same way.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import ModelFileError, OutputError
from ..core.model.opset import quantized_reason
from ..core.model.precision import fidelity, int8_sibling
from ..core.model.runtime import load_model
from ..core.storage.files import AtomicFile, same_file
from .calibration import CALIBRATION_PX, CALIBRATION_WINDOWS, calibration_batches
from .weight_storage import check_storage, restore_fp32, store_fp16, weight_storage

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

CALIBRATION_PERCENTILE = 99.99


def equalize_instance_norm_inputs(model: onnx.ModelProto, batches: list[np.ndarray]) -> tuple[onnx.ModelProto, int]:
    """Rescale every convolution that feeds an InstanceNormalization so its output channels are centred with unit
    spread on the calibration data; returns the new model and how many convolutions were rescaled.

    InstanceNorm (without affine) removes each channel's own offset and scale, so ``W_c -> s_c W_c`` and
    ``b_c -> s_c (b_c - mean_c)`` leaves the network's output unchanged (up to InstanceNorm's epsilon), while the
    per-tensor int8 range of the convolution's output no longer has to span channels of very different offsets
    and spreads. This is what makes static int8 work on CycleGAN generators.
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = copy.deepcopy(model)
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    initializers = {init.name: init for init in graph.initializer}
    uses = Counter(name for node in graph.node for name in node.input)
    targets = []
    for node in graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        after = consumers[node.output[0]]
        if (node.op_type in ("Conv", "ConvTranspose") and group == 1 and node.input[1] in initializers
                and len(after) == 1 and after[0].op_type == "InstanceNormalization"):
            targets.append(node)
    if not targets:
        return model, 0
    probe = copy.deepcopy(model)
    for node in targets:
        probe.graph.output.append(helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [node.output[0] for node in targets]
    sums: dict[str, np.ndarray] = {}
    squares: dict[str, np.ndarray] = {}
    count = 0
    for batch in batches:
        outputs = session.run(names, {"input": batch})
        count += 1
        for name, y in zip(names, outputs):
            y64 = y.astype(np.float64)
            sums[name] = sums.get(name, 0.0) + y64.mean(axis=(0, 2, 3))
            squares[name] = squares.get(name, 0.0) + (y64 ** 2).mean(axis=(0, 2, 3))
    for node in targets:
        name = node.output[0]
        mean = sums[name] / count
        std = np.sqrt(np.maximum(squares[name] / count - mean ** 2, 0.0))
        scale = 1.0 / np.maximum(std, 1e-6 * max(float(std.max()), 1e-12))
        weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float64)
        axis_shape = (-1, 1, 1, 1) if node.op_type == "Conv" else (1, -1, 1, 1)
        channels = weight.shape[0] if node.op_type == "Conv" else weight.shape[1]
        bias = (numpy_helper.to_array(initializers[node.input[2]]).astype(np.float64)
                if len(node.input) > 2 and node.input[2] else np.zeros(channels))
        new_weight = (weight * scale.reshape(axis_shape)).astype(np.float32)
        new_bias = ((bias - mean) * scale).astype(np.float32)
        w_name, b_name = f"{node.name}/equalized_weight", f"{node.name}/equalized_bias"
        graph.initializer.extend([numpy_helper.from_array(new_weight, w_name),
                                  numpy_helper.from_array(new_bias, b_name)])
        uses[node.input[1]] -= 1
        if len(node.input) > 2 and node.input[2]:
            uses[node.input[2]] -= 1
        node.input[1] = w_name
        if len(node.input) > 2:
            node.input[2] = b_name
        else:
            node.input.append(b_name)
    unused = {name for name, n in uses.items() if n <= 0}
    kept = [init for init in graph.initializer if init.name not in unused]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model, len(targets)


#: The padding ops quantised with ``int8_pads`` (onnxruntime's QDQ quantiser leaves a nearest Resize in float
#: whatever is asked: measured on the bundled painter, 0 of its 2 Resize nodes).
PAD_OPS = ("Pad",)


def pads_feeding(model: onnx.ModelProto, convs: list[str]) -> list[str]:
    """The names of the :data:`PAD_OPS` nodes whose values reach one of ``convs`` through padding only."""
    producer = {out: n for n in model.graph.node for out in n.output}
    by_name = {n.name: n for n in model.graph.node}
    found: list[str] = []
    stack = [by_name[c].input[0] for c in convs if c in by_name]
    while stack:
        node = producer.get(stack.pop())
        if node is not None and node.op_type in PAD_OPS and node.name not in found:
            found.append(node.name)
            stack.append(node.input[0])
    return found


def upsampling_convs(model: onnx.ModelProto) -> list[str]:
    """The names of the convolutions of the upsampling path: every transposed convolution, and every convolution
    after the graph's first upsampling node (``ConvTranspose``, ``Resize`` or ``Upsample``) in its node order
    (ONNX lists nodes in a topological order; a generator's decoder is the graph's tail)."""
    nodes = list(model.graph.node)
    first = next((i for i, n in enumerate(nodes) if n.op_type in ("ConvTranspose", "Resize", "Upsample")), len(nodes))
    return [n.name for i, n in enumerate(nodes)
            if n.op_type == "ConvTranspose" or (n.op_type == "Conv" and i > first)]


def quantize_model(model_path: str | Path, calibration_raster: str | Path, output_path: str | Path,
                   windows: int = CALIBRATION_WINDOWS, window_px: int = CALIBRATION_PX,
                   percentile: float = CALIBRATION_PERCENTILE, float_first: bool = True,
                   float_upsampling: bool = True, elevation: str | Path | None = None,
                   storage: str | None = None, int8_pads: bool = False) -> QuantizeReport:
    """Write an int8 copy of ``model_path`` calibrated on windows of ``calibration_raster`` (and, for a
    terrain-aware model, of the DEM ``elevation``); its float layers' weights are stored as ``storage``
    (``"fp32"`` or ``"fp16"``; default: as the source model stores its weights).

    Recipe (chosen by measurement, docs/engine.md): InstanceNorm input equalisation, then onnxruntime static QDQ
    quantisation of the convolutions (per-channel int8 weights, uint8 activations, ``percentile`` calibration).
    Kept in float: the first convolution (``float_first``: it sees the raw input), the last one (class scores or
    image values), the upsampling path (``float_upsampling``, :func:`upsampling_convs`: its full-resolution
    activations are where int8 loses most, and onnxruntime's CPU EP has no fused int8 kernel for transposed
    convolutions) and the final Softmax/Tanh. ``int8_pads`` quantises the padding between convolutions too
    (:data:`PAD_OPS`), so OpenVINO pads uint8 tensors instead of converting them to bf16 and back.

    Raises:
        ModelFileError / ContractError: the source model is unusable.
        OptionError: an unknown ``storage``.
        OutputError: the output is the model or the calibration raster, or cannot be written (nothing partial is
            left under its name).
        InputRasterError: the calibration raster does not fit the model.
    """
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if storage is not None:
        check_storage(storage)
    for other, what in ((model_path, "the model it quantises"), (calibration_raster, "the calibration raster")):
        if same_file(output_path, other):
            raise OutputError(f"The output {output_path} is {what}; choose another file name (e.g. "
                                 f"{int8_sibling(model_path).name}).")
    # the reference: the float model on onnxruntime, even when M.int8.onnx exists or OpenVINO is installed
    source = load_model(model_path, "cpu", precision="fp32", backend="onnxruntime")
    contract = source.contract
    try:
        batches = list(calibration_batches(contract, calibration_raster, windows, window_px, elevation))
    except BaseException:
        source.close()
        raise
    check = batches[: max(1, len(batches) // 4)]
    reference = [source.run(b) for b in check]
    source.close()

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter([{"input": b} for b in batches])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._items, None)

    output_path = Path(output_path)
    with tempfile.TemporaryDirectory(prefix="lcgan-quant-") as tmp:
        try:
            float_model = onnx.load(str(model_path))
        except Exception as exc:  # (onnxruntime read it already; onnx raises DecodeError, ValueError...)
            raise ModelFileError(f"Cannot read {model_path} with onnx: {exc}") from None
        twice = quantized_reason(float_model, model_path)
        if twice:
            raise ModelFileError(twice)
        storage = storage or weight_storage(float_model)
        restored, n_restored = restore_fp32(float_model)
        source_float = Path(tmp) / "float.onnx" if n_restored else Path(model_path)
        if n_restored:
            onnx.save(restored, str(source_float))
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source_float), str(prepared), skip_symbolic_shape=True)
        equalized, n_equalized = equalize_instance_norm_inputs(onnx.load(str(prepared)), batches)
        for i, node in enumerate(equalized.graph.node):  # exclusion works by node name
            node.name = node.name or f"{node.op_type}_{i}"
        onnx.save(equalized, str(prepared))
        convs = [n.name for n in equalized.graph.node if n.op_type in ("Conv", "ConvTranspose")]
        kept = (convs[:1] if float_first else []) + convs[-1:]
        if float_upsampling:
            kept += upsampling_convs(equalized)
        kept = list(dict.fromkeys(kept))  # (first and last are one node in a one-convolution model)
        float_convs = len(kept)
        if int8_pads:  # (a float convolution keeps its float input: the padding feeding it stays float too)
            kept += pads_feeding(equalized, kept)
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(str(prepared), str(quantized), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv", "ConvTranspose", *(PAD_OPS if int8_pads else ())],
                        nodes_to_exclude=kept,
                        calibrate_method=CalibrationMethod.Percentile, extra_options={"CalibPercentile": percentile})
        model = onnx.load(str(quantized))
        if storage == "fp16":
            model = store_fp16(model)[0]
        extra = dict(contract.extra, precision="int8", quantized_from=Path(model_path).name,
                     calibration=f"{len(batches)} windows of {window_px} px from {Path(calibration_raster).name}")
        metadata = dataclasses.replace(contract, extra=extra).to_metadata()
        del model.metadata_props[:]
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        data = model.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = [session.run(["output"], {"input": b})[0] for b in check]
    report = QuantizeReport(output_path, n_equalized, len(batches), *fidelity(contract, reference, got),
                            float_convs=float_convs, convs=len(convs),
                            float_rule=", ".join((["first"] if float_first else []) + ["last"]
                                                 + (["upsampling path"] if float_upsampling else []))
                            + ("; padding in int8" if int8_pads else ""))
    try:
        with AtomicFile(output_path) as tmp:
            tmp.write_bytes(data)
    except OutputError:
        raise
    except OSError as exc:  # (the disk filled up while writing: AtomicFile removed the partial file)
        raise OutputError(f"Cannot write {output_path}: {exc.strerror or exc}") from None
    log.info("quantised %s -> %s (%.1f MB): %s", model_path, output_path, len(data) / 1e6, report.summary)
    return report


@dataclass(frozen=True)
class QuantizeReport:
    """What :func:`quantize_model` wrote and how closely it follows the float model on held-back windows."""

    path: Path
    equalized_convs: int
    calibration_windows: int
    metric: str
    value: float
    float_convs: int = 0
    convs: int = 0
    float_rule: str = "first, last, upsampling path"  # which convolutions the recipe kept in float

    @property
    def summary(self) -> str:
        shown = f"{self.value:.2%}" if self.metric == "class_agreement" else f"{self.value:.1f} dB"
        return (f"{self.metric} vs float {shown} on calibration windows, {self.equalized_convs} convolutions "
                f"equalised, {self.float_convs} of {self.convs} kept in float ({self.float_rule}), "
                f"{self.calibration_windows} calibration windows")
