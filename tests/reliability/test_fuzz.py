"""Fuzzing (hypothesis) of what the other tests check by example.

* Tiling geometry as the engine streams it: for any raster size, window and overlap, the windows lie inside the
  raster, the streaming blender hands out every pixel exactly once, and what it hands out is the partition-of-unity
  blend (a signal every window agrees on comes out unchanged). ``tests/core/test_tiling.py`` fuzzes the 1-D axes and
  the weights; this goes through the 2-D grid and the blender's carry/band buffers.
* Random small models that misbehave at run time (outputs of other shapes, NaN/Inf/out-of-range values) with random
  metadata values, run over a real GeoTIFF: only LcganError, never another exception or a file left behind.
* Metadata parsing at any depth: ``tests/core/test_contract.py`` replaces top-level keys; here any nested value
  (a class code, a colour, one radiometry number...) is replaced, deleted or the JSON cut short, and parsing must
  either give a valid contract or raise ContractError, never another exception. A few examples go through real ONNX
  files and ``load_model``.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper

from lcgan_qgis.core.errors import ContractError, LcganError
from lcgan_qgis.core.model.contract import METADATA_KEY, Direction, ModelContract
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.settings import RunSettings, Windowing
from lcgan_qgis.core.run.streaming import Blender
from lcgan_qgis.core.run.tiling import fit_window, make_tiling
from tests.fixtures.onnx_factory import default_contract, pointwise_model, save
from tests.fixtures.rasters import read_tif, write_tif

from . import odd_models
from .helpers import assert_no_partials


@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 700), w=st.integers(1, 700), target=st.integers(4, 128).map(lambda k: 4 * k),
       data=st.data())
def test_streaming_blender_hands_out_each_pixel_once_and_blends_exactly(h: int, w: int, target: int,
                                                                       data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, target // 2 - 1), label="overlap")
    multiple = 4
    tiling = make_tiling(h, w, fit_window(h, target, overlap, multiple), fit_window(w, target, overlap, multiple),
                         overlap, multiple)
    rows, cols = tiling.rows, tiling.cols
    ph, pw = tiling.padded_shape
    assert ph % multiple == 0 and pw % multiple == 0 and ph >= rows.extent and pw >= cols.extent
    blender = Blender(tiling, 3, w)
    out = np.zeros((3, h, w), np.float64)
    handed_out = np.zeros((h, w), np.int32)
    for r in range(rows.count):
        blender.start_strip(r)
        for c in range(cols.count):
            window = tiling.window(r, c)
            assert window.col_off >= 0 and window.row_off >= 0 and window.col_end <= w and window.row_end <= h
            if r or c:
                assert window.col_off < w and window.row_off < h
            yy, xx = np.mgrid[window.row_off:window.row_end, window.col_off:window.col_end]
            signal = np.stack([np.ones_like(yy), yy, xx]).astype(np.float32)  # the same value from every window
            final = blender.add(r, c, signal)
            y0, x0 = rows.starts[r], cols.starts[c]
            fh, fw = final.shape[1:]
            out[:, y0:y0 + fh, x0:x0 + fw] = final
            handed_out[y0:y0 + fh, x0:x0 + fw] += 1
    assert (handed_out == 1).all()
    yy, xx = np.mgrid[0:h, 0:w]
    np.testing.assert_allclose(out[0], 1.0, atol=1e-5)
    np.testing.assert_allclose(out[1], yy, atol=1e-5 * max(h, 1) + 1e-4)
    np.testing.assert_allclose(out[2], xx, atol=1e-5 * max(w, 1) + 1e-4)


BASE = default_contract(Direction.RGB_TO_LANDCOVER).to_dict()


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (dict keys and list indices) to a node of ``node``, the root excluded."""
    found: list[tuple] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


PATHS = _paths(BASE)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)
EDITS = st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["replace", "delete"]), JSON_VALUES),
                 min_size=1, max_size=3)


def _edit(edits: list[tuple[tuple, str, Any]]) -> dict:
    data = copy.deepcopy(BASE)
    for path, action, value in edits:
        parent: Any = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            if action == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):  # an earlier edit removed or replaced this path
            continue
    return data


def _parse(metadata: dict[str, str]) -> None:
    try:
        contract = ModelContract.from_metadata(metadata, source="fuzz.onnx")
    except ContractError as exc:
        assert str(exc).startswith("fuzz.onnx"), str(exc)  # the message names the model file
    else:
        assert contract.tile_size_px % contract.size_multiple_px == 0
        assert len(contract.radiometry.low) == contract.image_bands


@settings(max_examples=400, deadline=None)
@given(edits=EDITS)
def test_nested_metadata_values_raise_only_contract_errors(edits: list[tuple[tuple, str, Any]]) -> None:
    _parse({METADATA_KEY: json.dumps(_edit(edits))})


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, len(json.dumps(BASE)) - 1), junk=st.text(max_size=3))
def test_truncated_metadata_json_raises_contract_errors(cut: int, junk: str) -> None:
    _parse({METADATA_KEY: json.dumps(BASE)[:cut] + junk})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_fuzzed_metadata_in_real_onnx_files_fails_only_with_lcgan_errors(edits: list[tuple[tuple, str, Any]],
                                                                         tmp_path: Path) -> None:
    model = pointwise_model(default_contract(Direction.RGB_TO_LANDCOVER))
    del model.metadata_props[:]
    helper.set_model_props(model, {METADATA_KEY: json.dumps(_edit(edits))})
    path = save(model, tmp_path / "fuzz.onnx")
    try:
        with load_model(path, "cpu", threads=1) as loaded:
            assert loaded.contract.direction in tuple(Direction)
    except LcganError as exc:
        assert str(path) in str(exc)


def test_the_fuzzed_paths_reach_deep_values() -> None:
    """The strategies really reach nested values (class codes, colours, radiometry numbers)."""
    assert ("scheme", "classes", 0, "code") in PATHS and ("radiometry", "low", 2) in PATHS
    with pytest.raises(ContractError, match=r"scheme: code 23: colour must be"):
        ModelContract.from_metadata({METADATA_KEY: json.dumps(_edit([(("scheme", "classes", 3, "color"), "replace",
                                                                      7)]))}, source="fuzz.onnx")


TOP_KEYS = sorted(BASE)
FUZZ_LANDCOVER = np.array([11, 21, 42, 52, 255], np.uint8)[np.random.default_rng(0).integers(0, 5, (20, 24))]
FUZZ_IMAGERY = np.random.default_rng(1).integers(6000, 16000, (3, 20, 24)).astype(np.uint16)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(direction=st.sampled_from(list(Direction)), crop=st.sampled_from([0, 0, 0, 4]),
       pad=st.sampled_from([0, 0, 0, 4]), batch=st.sampled_from([1, 1, 1, 2]),
       add=st.sampled_from([0.0, 0.0, 0.0, 5.0, -5.0, np.nan, np.inf, -np.inf]),
       scale=st.sampled_from([1.0, 1.0, 0.0, -1.0, 1e30]), final=st.sampled_from([None, None, *odd_models.FINALS]),
       edits=st.lists(st.tuples(st.sampled_from(TOP_KEYS), JSON_VALUES), max_size=2))
def test_random_models_fail_only_with_lcgan_errors_and_leave_no_file(
        direction: Direction, crop: int, pad: int, batch: int, add: float, scale: float, final: str | None,
        edits: list[tuple[str, Any]], tmp_path: Path) -> None:
    """Small real ONNX models with random output shapes (cropped, padded, repeated along the batch), random values
    (NaN, Inf, huge, out of range) and random metadata values, run over a real GeoTIFF: a run either writes a whole
    output or raises an LcganError naming the model; nothing else, and never a file left behind."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    contract = default_contract(direction)
    model = odd_models.odd_model(contract, crop_px=crop, pad_px=pad, batch_factor=batch, add=add, scale=scale,
                                 final=final)
    meta = contract.to_dict()
    for key, value in edits:
        meta[key] = value
    odd_models.with_metadata_text(model, json.dumps(meta))
    path = odd_models.save(model, folder / "fuzz.onnx")
    pixels = FUZZ_LANDCOVER if direction is Direction.LANDCOVER_TO_RGB else FUZZ_IMAGERY
    source = write_tif(folder / "in.tif", pixels, nodata=255 if direction is Direction.LANDCOVER_TO_RGB else None)
    out = folder / "out"
    out.mkdir()
    try:
        with load_model(path, "cpu", threads=1) as loaded, GdalReader(source) as reader:
            options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=16, overlap_px=2)))
            result = translate(loaded, reader, out / "result.tif", options)
    except LcganError as exc:
        assert str(path) in str(exc) or "in.tif" in str(exc), str(exc)
        assert list(out.iterdir()) == []
    else:
        assert result.output_path == str(out / "result.tif")
        assert {p.name for p in out.iterdir()} <= {"result.tif", "result.tif.aux.xml"}
        assert read_tif(out / "result.tif").shape[1:] == pixels.shape[-2:]
    assert_no_partials(folder)
