"""Tiny ONNX models that honour the lcgan contract, built with onnx.helper (no torch), for tests.

* ``landcover_to_rgb``: a 1x1 convolution from one-hot classes to RGB followed by Tanh, so each class maps to a
  fixed colour (per-pixel, hence tiling-invariant): class i -> tanh(weight[:, i] + bias).
* ``rgb_to_landcover``: a 1x1 convolution from the bands to class scores followed by Softmax over channels.
* ``identity``-like variants are obtained by choosing the weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lcgan_qgis.core.model.contract import Direction, ModelContract, Radiometry
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import default_scheme_path


def default_contract(direction: Direction | str, **overrides: object) -> ModelContract:
    """A contract with the NLCD scheme and Landsat-like radiometry; keyword overrides replace fields."""
    fields: dict[str, object] = dict(
        direction=Direction(direction),
        scheme=ClassScheme.load(default_scheme_path()),
        radiometry=Radiometry(mode="fixed", low=(6000.0, 6500.0, 7000.0), high=(16000.0, 15000.0, 14000.0)),
        tile_size_px=64,
        overlap_px=8,
        gsd_m=30.0,
        model_version="test",
    )
    fields.update(overrides)
    return ModelContract(**fields)  # type: ignore[arg-type]


def pointwise_model(contract: ModelContract, weight: np.ndarray | None = None, bias: np.ndarray | None = None,
                    seed: int = 0) -> onnx.ModelProto:
    """A per-pixel model (1x1 conv + Tanh or Softmax) with the contract's channels and metadata."""
    rng = np.random.default_rng(seed)
    c_in, c_out = contract.in_channels, contract.out_channels
    w = rng.normal(0, 1.0, (c_out, c_in)).astype(np.float32) if weight is None else weight.astype(np.float32)
    b = np.zeros(c_out, np.float32) if bias is None else bias.astype(np.float32)
    nodes = [helper.make_node("Conv", ["input", "W", "B"], ["scores"], kernel_shape=[1, 1])]
    if contract.direction is Direction.LANDCOVER_TO_RGB:
        nodes.append(helper.make_node("Tanh", ["scores"], ["output"]))
    else:
        nodes.append(helper.make_node("Softmax", ["scores"], ["output"], axis=1))
    graph = helper.make_graph(
        nodes,
        "lcgan_test_pointwise",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c_in, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", c_out, "H", "W"])],
        initializer=[numpy_helper.from_array(w.reshape(c_out, c_in, 1, 1), "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, contract.to_metadata())
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: Path | str) -> Path:
    path = Path(path)
    onnx.save(model, str(path))
    return path


def write_pointwise(path: Path | str, direction: Direction | str, **contract_overrides: object) -> Path:
    """Write a per-pixel contract model for ``direction`` to ``path`` and return the path."""
    return save(pointwise_model(default_contract(direction, **contract_overrides)), path)


def write_terrain_pointwise(path: Path | str, **contract_overrides: object) -> Path:
    """A terrain-aware land cover -> RGB model (all three terrain channels) whose bands are tanh(hillshade),
    tanh(slope), tanh(relative elevation): each output pixel shows the terrain channels the engine fed it."""
    from lcgan_qgis.core.terrain.channels import TERRAIN_CHANNELS, TerrainInputs

    contract = default_contract("landcover_to_rgb", terrain=TerrainInputs(TERRAIN_CHANNELS), **contract_overrides)
    weight = np.zeros((3, contract.in_channels), np.float32)
    weight[:, contract.num_classes:contract.num_classes + 3] = np.eye(3)
    return save(pointwise_model(contract, weight=weight), path)
