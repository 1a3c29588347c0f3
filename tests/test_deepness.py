"""The fixed-shape export for the Deepness QGIS plugin, checked against the rules Deepness documents and applies
when it loads a model, then run the way Deepness runs a tile.

Deepness's rules, as its code and documentation state them (PUTvision/qgis-plugin-deepness):
``docs/source/creators/creators_add_metadata_to_model.rst`` (the metadata keys and their types),
``src/deepness/processing/models/model_base.py`` (one input; ``model_type`` read as JSON and capitalized;
``class_names`` a JSON object whose keys are consecutive integers from 0; ``resolution`` a float, ``tile_size`` and
``tiles_overlap`` integers; ``standardization_mean``/``std`` lists of floats, one per input channel),
``src/deepness/processing/models/segmentor.py`` (one 4-D output, square), ``src/deepness/deepness_dockwidget.py``
(the tile size is the input shape's last dimension, put into an integer spin box), and
``src/deepness/processing/models/preprocessing_utils.py`` (a tile is uint8 RGB, scaled by 1/255, standardized,
transposed from NHWC to NCHW).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from lcgan_qgis.core.errors import ContractError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.resources import bundled_model_path
from tests.fixtures.onnx_factory import write_pointwise
from tools.deepness_export import export, main

DEEPNESS_MODEL_TYPES = {"Segmentor", "Regressor", "Detector", "Superresolution", "Recognition"}


def deepness_problems(path: Path) -> list[str]:
    """Everything Deepness would refuse or misread when it loads ``path`` (empty: it loads)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    problems = []
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        problems.append(f"{len(inputs)} inputs (Deepness: exactly one)")
    shape = inputs[0].shape
    if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]) or shape[-1] != shape[-2]:
        problems.append(f"input shape {shape}: Deepness puts shape[-1] into an integer spin box and wants it square")
    if len(outputs) != 1 or len(outputs[0].shape) != 4 or outputs[0].shape[2] != outputs[0].shape[3] \
            or not isinstance(outputs[0].shape[2], int):
        problems.append(f"output {[o.shape for o in outputs]}: Deepness wants one square 4-D output")
    try:
        model_type = str(json.loads(meta["model_type"])).capitalize()
        if model_type not in DEEPNESS_MODEL_TYPES:
            problems.append(f"model_type {model_type!r} is not a Deepness model type")
        names = json.loads(meta["class_names"])
        keys = sorted(int(k) for k in names)
        if keys != list(range(len(keys))):
            problems.append("class_names keys are not consecutive from 0")
        if len(keys) != outputs[0].shape[1]:
            problems.append(f"{len(keys)} class names for {outputs[0].shape[1]} output channels")
        float(json.loads(meta["resolution"]))
        tile = json.loads(meta["tile_size"])
        if not isinstance(tile, int) or tile != shape[-1]:
            problems.append(f"tile_size {tile!r} is not the input size {shape[-1]}")
        overlap = json.loads(meta["tiles_overlap"])
        if not isinstance(overlap, int) or not 0 <= overlap < 100:
            problems.append(f"tiles_overlap {overlap!r} is not a percentage")
        mean, std = json.loads(meta["standardization_mean"]), json.loads(meta["standardization_std"])
        if len(mean) != shape[1] or len(std) != shape[1] or min(float(s) for s in std) <= 0:
            problems.append("standardization needs one mean and one positive std per input channel")
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"metadata: {exc!r}")
    return problems


def run_like_deepness(path: Path, tile_rgb_uint8: np.ndarray) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 tile through ``path`` as Deepness preprocesses it; returns ``(C, H, W)``."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    mean = np.array(json.loads(meta["standardization_mean"]), np.float32)
    std = np.array(json.loads(meta["standardization_std"]), np.float32)
    batch = (np.float32(tile_rgb_uint8[None] / 255.0) - mean) / std
    out = session.run(None, {session.get_inputs()[0].name: np.transpose(batch, (0, 3, 1, 2)).astype(np.float32)})
    return out[0][0]


def test_a_dynamic_lcgan_model_breaks_deepness_and_its_export_passes(tmp_path: Path) -> None:
    model = write_pointwise(tmp_path / "rgb_to_landcover.onnx", Direction.RGB_TO_LANDCOVER)
    assert any("integer spin box" in p for p in deepness_problems(model))  # the bug users hit
    fixed = export(model, tmp_path)
    assert fixed == tmp_path / "rgb_to_landcover.deepness.onnx"
    assert deepness_problems(fixed) == []
    tile = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    probabilities = run_like_deepness(fixed, tile)
    assert probabilities.shape == (14, 64, 64) and np.allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
    # the same numbers as the original model on that tile (lcgan runs the original)
    original = run_like_deepness(model, tile)
    assert np.array_equal(probabilities.argmax(0), original.argmax(0))
    kept = {p.key for p in onnx.load(str(fixed)).metadata_props}
    assert {"lcgan", "model_type", "class_names", "resolution", "tile_size", "tiles_size"} <= kept


def test_the_tile_size_can_be_chosen_and_the_keys_follow(tmp_path: Path) -> None:
    model = write_pointwise(tmp_path / "m.onnx", Direction.RGB_TO_LANDCOVER)
    fixed = export(model, tmp_path / "m512.onnx", size_px=512)
    session = ort.InferenceSession(str(fixed), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, 512, 512]
    assert json.loads(session.get_modelmeta().custom_metadata_map["tile_size"]) == 512
    assert deepness_problems(fixed) == []
    assert main(["--model", str(model), "--out", str(tmp_path / "odd.onnx"), "--tile-size", "62"]) == 2


def test_only_land_cover_models_are_exported(tmp_path: Path) -> None:
    rgb = write_pointwise(tmp_path / "landcover_to_rgb.onnx", Direction.LANDCOVER_TO_RGB)
    with pytest.raises(ContractError, match="only rgb_to_landcover models can be exported"):
        export(rgb, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landcover_to_rgb.onnx"]


def test_the_bundled_model_exports_for_deepness(tmp_path: Path) -> None:
    bundled = bundled_model_path(Direction.RGB_TO_LANDCOVER)
    if not bundled.is_file():
        pytest.skip(f"no bundled model at {bundled}")
    fixed = export(bundled, tmp_path)
    assert deepness_problems(fixed) == []


def test_a_float16_stored_model_exports_for_deepness_and_keeps_its_storage(tmp_path: Path) -> None:
    from lcgan_qgis.tooling.weight_storage import convert_file, weight_storage

    bundled = bundled_model_path(Direction.RGB_TO_LANDCOVER)
    if not bundled.is_file():
        pytest.skip(f"no bundled model at {bundled}")
    model = tmp_path / "rgb_to_landcover.onnx"
    model.write_bytes(bundled.read_bytes())
    convert_file(model, "fp16")  # (no change where the bundled file stores float16 already)
    out = tmp_path / "out"
    out.mkdir()
    fixed = export(model, out)
    assert deepness_problems(fixed) == []
    assert weight_storage(onnx.load(str(fixed))) == "fp16" and fixed.stat().st_size < 0.6 * 11_000_000
    size = json.loads({p.key: p.value for p in onnx.load(str(fixed)).metadata_props}["tile_size"])  # Deepness's
    tile = np.random.default_rng(0).integers(0, 256, (size, size, 3)).astype(np.uint8)
    probabilities = run_like_deepness(fixed, tile)
    assert probabilities.shape == (14, size, size)
    np.testing.assert_allclose(probabilities.sum(0), 1.0, atol=1e-5)
