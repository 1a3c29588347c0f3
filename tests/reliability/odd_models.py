"""ONNX models that load (their graph and metadata pass the load-time checks) but misbehave when run: outputs of
another height, width or batch size, NaN, Inf or out-of-range values. Built with onnx.helper, run by onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lcgan_qgis.core.model.contract import METADATA_KEY, Direction, ModelContract

FINALS = ("softmax", "tanh", "none")


def odd_model(contract: ModelContract, *, crop_px: int = 0, pad_px: int = 0, batch_factor: int = 1,
              add: float = 0.0, scale: float = 1.0, final: str | None = None, seed: int = 0) -> onnx.ModelProto:
    """A 1x1 convolution with the contract's channels, then (in this order) a crop of ``crop_px`` rows and columns,
    a zero padding of ``pad_px``, ``batch_factor`` copies along the batch axis, ``x * scale + add`` and ``final``
    (default: what the contract promises, Softmax for land cover and Tanh for imagery). The graph declares the
    contract's dynamic ``[N, C, H, W]`` output whatever it really returns."""
    final = final or ("softmax" if contract.direction is Direction.RGB_TO_LANDCOVER else "tanh")
    rng = np.random.default_rng(seed)
    c_in, c_out = contract.in_channels, contract.out_channels
    weight = rng.normal(0, 1.0, (c_out, c_in, 1, 1)).astype(np.float32)
    inits = [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(np.zeros(c_out, np.float32), "B"),
             numpy_helper.from_array(np.array([scale], np.float32), "scale"),
             numpy_helper.from_array(np.array([add], np.float32), "add")]
    nodes = [helper.make_node("Conv", ["input", "W", "B"], ["t0"], kernel_shape=[1, 1])]
    last = "t0"
    if crop_px:
        inits += [numpy_helper.from_array(np.array([0, 0], np.int64), "crop_start"),
                  numpy_helper.from_array(np.array([-crop_px, -crop_px], np.int64), "crop_end"),
                  numpy_helper.from_array(np.array([2, 3], np.int64), "crop_axes")]
        nodes.append(helper.make_node("Slice", [last, "crop_start", "crop_end", "crop_axes"], ["t1"]))
        last = "t1"
    if pad_px:
        inits.append(numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, pad_px, pad_px], np.int64), "pads"))
        nodes.append(helper.make_node("Pad", [last, "pads"], ["t2"]))
        last = "t2"
    if batch_factor > 1:
        nodes.append(helper.make_node("Concat", [last] * batch_factor, ["t3"], axis=0))
        last = "t3"
    nodes += [helper.make_node("Mul", [last, "scale"], ["t4"]), helper.make_node("Add", ["t4", "add"], ["t5"])]
    if final == "softmax":
        nodes.append(helper.make_node("Softmax", ["t5"], ["output"], axis=1))
    elif final == "tanh":
        nodes.append(helper.make_node("Tanh", ["t5"], ["output"]))
    else:
        nodes.append(helper.make_node("Identity", ["t5"], ["output"]))
    graph = helper.make_graph(
        nodes, "lcgan_test_odd",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c_in, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", c_out, "H", "W"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, contract.to_metadata())
    onnx.checker.check_model(model)
    return model


def with_metadata_text(model: onnx.ModelProto, text: str) -> onnx.ModelProto:
    """``model`` whose lcgan metadata is ``text`` as it is (any string, even JSON no encoder would write)."""
    del model.metadata_props[:]
    helper.set_model_props(model, {METADATA_KEY: text})
    return model


def deeply_nested_metadata(contract: ModelContract, depth: int = 100_000) -> str:
    """The contract's metadata JSON with ``extra`` nested ``depth`` lists deep (json.dumps cannot write it)."""
    data = contract.to_dict()
    data["extra"] = "NESTED"
    return json.dumps(data).replace('"NESTED"', "[" * depth + "]" * depth)


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def hung_model(contract: ModelContract, iterations: int = 2**62) -> onnx.ModelProto:
    """A valid-looking model that never returns: a 1x1 convolution fed through a ``Loop`` of ``iterations`` identity
    steps (2^62: longer than any machine runs), then the contract's final activation."""
    c_in, c_out = contract.in_channels, contract.out_channels
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "forever",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)])
    final = "Softmax" if contract.direction is Direction.RGB_TO_LANDCOVER else "Tanh"
    nodes = [helper.make_node("Conv", ["input", "W", "B"], ["t0"], kernel_shape=[1, 1]),
             helper.make_node("Loop", ["trips", "go", "t0"], ["t1"], body=body),
             helper.make_node(final, ["t1"], ["output"], **({"axis": 1} if final == "Softmax" else {}))]
    inits = [numpy_helper.from_array(np.full((c_out, c_in, 1, 1), 0.1, np.float32), "W"),
             numpy_helper.from_array(np.zeros(c_out, np.float32), "B"),
             numpy_helper.from_array(np.array(iterations, np.int64), "trips"),
             numpy_helper.from_array(np.array(True), "go")]
    graph = helper.make_graph(
        nodes, "lcgan_test_hung",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c_in, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", c_out, "H", "W"])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, contract.to_metadata())
    return model
