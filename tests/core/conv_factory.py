"""A small real convolutional lcgan model (3x3 convolutions, reflection padding, InstanceNorm) built with
onnx.helper: like the CycleGAN generator, each window's output depends on its neighbourhood and its own statistics,
so tiling matters and blending has something to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lcgan_qgis.core.model.contract import Direction, ModelContract
from tests.onnx_factory import default_contract


def conv_model(contract: ModelContract, hidden: int = 8, instance_norm: bool = True, seed: int = 0) -> onnx.ModelProto:
    """Pad-Conv3x3-[InstanceNorm]-Relu-Pad-Conv3x3-(Tanh|Softmax) with the contract's channels and metadata."""
    rng = np.random.default_rng(seed)
    c_in, c_out = contract.in_channels, contract.out_channels
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (hidden, c_in, 3, 3)).astype(np.float32), "W1"),
        numpy_helper.from_array(rng.normal(0, 0.5, hidden).astype(np.float32), "B1"),
        numpy_helper.from_array(rng.normal(0, 0.3, (c_out, hidden, 3, 3)).astype(np.float32), "W2"),
        numpy_helper.from_array(np.zeros(c_out, np.float32), "B2"),
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
        numpy_helper.from_array(np.ones(hidden, np.float32), "ones"),
        numpy_helper.from_array(np.zeros(hidden, np.float32), "zeros"),
    ]
    nodes = [helper.make_node("Pad", ["input", "pads"], ["p1"], mode="reflect"),
             helper.make_node("Conv", ["p1", "W1", "B1"], ["c1"], kernel_shape=[3, 3])]
    if instance_norm:
        nodes.append(helper.make_node("InstanceNormalization", ["c1", "ones", "zeros"], ["n1"]))
    nodes += [helper.make_node("Relu", ["n1" if instance_norm else "c1"], ["r1"]),
              helper.make_node("Pad", ["r1", "pads"], ["p2"], mode="reflect"),
              helper.make_node("Conv", ["p2", "W2", "B2"], ["c2"], kernel_shape=[3, 3])]
    if contract.direction is Direction.LANDCOVER_TO_RGB:
        nodes.append(helper.make_node("Tanh", ["c2"], ["output"]))
    else:
        nodes.append(helper.make_node("Softmax", ["c2"], ["output"], axis=1))
    graph = helper.make_graph(
        nodes, "lcgan_test_conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c_in, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", c_out, "H", "W"])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, contract.to_metadata())
    onnx.checker.check_model(model)
    return model


def write_conv(path: Path | str, direction: Direction | str, instance_norm: bool = True,
               **contract_overrides: object) -> Path:
    model = conv_model(default_contract(direction, **contract_overrides), instance_norm=instance_norm)
    onnx.save(model, str(path))
    return Path(path)
