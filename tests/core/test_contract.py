"""The model contract: round trips through real ONNX files and precise errors for bad metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

from lcgan_qgis.core.errors import ContractError
from lcgan_qgis.core.model.contract import METADATA_KEY, Direction, ModelContract, Radiometry, to_uint8
from tests.fixtures.onnx_factory import default_contract, pointwise_model, save


def _meta_of(path: Path) -> dict[str, str]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(sess.get_modelmeta().custom_metadata_map)


def _io_of(path: Path) -> tuple[list, list]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return ([(i.name, i.shape) for i in sess.get_inputs()], [(o.name, o.shape) for o in sess.get_outputs()])


@pytest.mark.parametrize("direction", list(Direction))
def test_round_trip_through_onnx_file(direction: Direction, tmp_path: Path) -> None:
    contract = default_contract(direction)
    path = save(pointwise_model(contract), tmp_path / "m.onnx")
    parsed = ModelContract.from_metadata(_meta_of(path), source=str(path))
    assert parsed == contract
    parsed.check_graph(*_io_of(path), source=str(path))
    assert parsed.in_channels == (14 if direction is Direction.LANDCOVER_TO_RGB else 3)
    assert parsed.out_channels == (3 if direction is Direction.LANDCOVER_TO_RGB else 14)


def test_deepness_keys_written_for_the_landcover_model(tmp_path: Path) -> None:
    contract = default_contract(Direction.RGB_TO_LANDCOVER, tile_size_px=256, overlap_px=32, gsd_m=30.0)
    meta = _meta_of(save(pointwise_model(contract), tmp_path / "m.onnx"))
    assert json.loads(meta["model_type"]) == "Segmentor"
    names = json.loads(meta["class_names"])
    assert names["0"] == "Open Water" and names["13"] == "Emergent Herbaceous Wetlands" and len(names) == 14
    assert json.loads(meta["resolution"]) == 3000.0
    assert json.loads(meta["tile_size"]) == json.loads(meta["tiles_size"]) == 256  # Deepness's code and docs
    assert json.loads(meta["tiles_overlap"]) == 12
    assert json.loads(meta["standardization_mean"]) == [0.5, 0.5, 0.5]


def test_rgb_model_carries_no_segmentor_keys() -> None:
    meta = default_contract(Direction.LANDCOVER_TO_RGB).to_metadata()
    assert set(meta) == {METADATA_KEY}


def test_model_without_metadata_is_refused(tmp_path: Path) -> None:
    model = pointwise_model(default_contract(Direction.RGB_TO_LANDCOVER))
    del model.metadata_props[:]
    path = save(model, tmp_path / "plain.onnx")
    with pytest.raises(ContractError, match=r"plain\.onnx carries no lcgan metadata"):
        ModelContract.from_metadata(_meta_of(path), source=str(path))


def _props(**changes: object) -> dict[str, str]:
    data = default_contract(Direction.RGB_TO_LANDCOVER).to_dict()
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return {METADATA_KEY: json.dumps(data)}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"direction": "sideways"}, r"Unknown direction 'sideways'; choose one of: landcover_to_rgb, rgb_to_landcover"),
        ({"direction": None}, r"lacks the required key 'direction'"),
        ({"tile_size_px": "256"}, r"'tile_size_px' must be int, got str"),
        ({"tile_size_px": 250}, r"tile_size_px 250 is not a multiple of size_multiple_px 4"),
        ({"tile_size_px": True}, r"'tile_size_px' has the wrong type \(bool\)"),
        ({"overlap_px": -1}, r"overlap_px must be an integer >= 0, got -1"),
        ({"overlap_px": 40, "tile_size_px": 64}, r"overlap_px 40 must be less than half of tile_size_px 64"),
        ({"gsd_m": 0}, r"gsd_m must be a positive number of metres, got 0"),
        ({"gsd_m": "30"}, r"'gsd_m' must be int or float, got str"),
        ({"contract_version": 99}, r"contract version 99 is not supported"),
        ({"scheme": {"classes": []}}, r"'classes' must be a non-empty list"),
        ({"scheme": {"classes": [{"code": 1, "name": "a", "color": "#000000"},
                                 {"code": 1, "name": "b", "color": "#ffffff"}]}}, r"repeats the code\(s\) \[1\]"),
        ({"scheme": {"classes": [{"code": 1, "name": "a", "color": "red"}]}}, r"colour must be '#rrggbb'"),
        ({"radiometry": {"mode": "fixed", "low": [1, 2], "high": [3, 4]}},
         r"radiometry has 2 band\(s\) but image_bands is 3"),
        ({"radiometry": {"mode": "fixed", "low": [5, 5, 5], "high": [4, 6, 6]}}, r"band 1: need finite low < high"),
        ({"radiometry": {"mode": "magic", "low": [0, 0, 0], "high": [1, 1, 1]}}, r"radiometry.mode must be one of"),
        ({"radiometry": {"mode": "fixed", "high": [1, 1, 1]}}, r"radiometry needs numeric lists 'low' and 'high'"),
    ],
)
def test_invalid_metadata_is_named_precisely(changes: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        ModelContract.from_metadata(_props(**changes), source="m.onnx")


def test_metadata_that_is_not_json() -> None:
    with pytest.raises(ContractError, match=r"m\.onnx: metadata 'lcgan' is not valid JSON"):
        ModelContract.from_metadata({METADATA_KEY: "{not json"}, source="m.onnx")


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ([("input", ["N", 3, "H", "W"])], [("output", ["N", 3, "H", "W"])], r"output has 3 channels .* needs 14"),
        ([("x", ["N", 3, "H", "W"])], [("output", ["N", 14, "H", "W"])], r"input is named 'x'"),
        ([("input", ["N", 3, 256, 256])], [("output", ["N", 14, 256, 256])], r"fixed height/width \[256, 256\]"),
        ([("input", ["N", 3, "H"])], [("output", ["N", 14, "H", "W"])], r"must be 4-D"),
        ([], [("output", ["N", 14, "H", "W"])], r"expected exactly one input, the graph has 0"),
    ],
)
def test_graph_disagreeing_with_contract(inputs: list, outputs: list, message: str) -> None:
    contract = default_contract(Direction.RGB_TO_LANDCOVER)
    with pytest.raises(ContractError, match=message):
        contract.check_graph(inputs, outputs, source="m.onnx")


def test_model_of_other_direction_fails_graph_check(tmp_path: Path) -> None:
    """A 14->3 graph whose metadata claims rgb_to_landcover (class count disagrees with the scheme)."""
    model = pointwise_model(default_contract(Direction.LANDCOVER_TO_RGB))
    helper.set_model_props(model, default_contract(Direction.RGB_TO_LANDCOVER).to_metadata())
    path = save(model, tmp_path / "swapped.onnx")
    contract = ModelContract.from_metadata(_meta_of(path), source=str(path))
    with pytest.raises(ContractError, match=r"input has 14 channels but a rgb_to_landcover model .* needs 3"):
        contract.check_graph(*_io_of(path), source=str(path))


def test_radiometry_normalize_maps_low_high_to_minus_one_one() -> None:
    r = Radiometry(mode="fixed", low=(0.0, 10.0), high=(100.0, 20.0))
    px = np.array([[[0.0, 50.0, 100.0, 200.0]], [[10.0, 15.0, 20.0, 0.0]]])
    out = r.normalize(px)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [-1.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(out[1, 0], [-1.0, 0.0, 1.0, -1.0])
    np.testing.assert_allclose(r.denormalize(out)[0, 0], [0.0, 50.0, 100.0, 100.0])


def test_to_uint8_range() -> None:
    np.testing.assert_array_equal(to_uint8(np.array([-2.0, -1.0, 0.0, 1.0, 3.0])), [0, 0, 128, 255, 255])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["direction", "tile_size_px", "overlap_px", "gsd_m", "scheme", "radiometry",
                                        "image_bands", "band_names", "contract_version", "extra"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-5, 600), st.floats(allow_nan=True),
                                 st.text(max_size=5), st.lists(st.integers(0, 3), max_size=4),
                                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))))
def test_fuzzed_metadata_raises_only_contract_errors(changes: dict) -> None:
    """Whatever the metadata holds, parsing either succeeds with a valid contract or raises ContractError."""
    try:
        contract = ModelContract.from_metadata(_props(**changes), source="fuzz.onnx")
    except ContractError as exc:
        assert str(exc)
    else:
        assert contract.tile_size_px % contract.size_multiple_px == 0


def test_radiometry_round_trips_through_its_dict_form() -> None:
    from lcgan_qgis.core.model.contract import Radiometry

    radio = Radiometry("fixed", (6000.0, 6500.0, 7000.0), (16000.0, 15000.0, 14000.0), (1.0, 99.0))
    assert Radiometry.from_dict(radio.to_dict()) == radio
    assert Radiometry.from_dict({"low": [0, 0, 0], "high": [1, 1, 1]}) == Radiometry("percentile", (0.0,) * 3,
                                                                                      (1.0,) * 3)
    with pytest.raises(ContractError, match=r"^run.json: radiometry needs numeric lists"):
        Radiometry.from_dict({"low": ["a"], "high": [1]}, "run.json")
    with pytest.raises(ContractError, match=r"^run.json: radiometry for band 1: need finite low < high"):
        Radiometry.from_dict({"low": [2], "high": [1]}, "run.json")
    assert "6000-16000, 6500-15000" in radio.explain() and "1-99 % range" in radio.explain("percentile")
