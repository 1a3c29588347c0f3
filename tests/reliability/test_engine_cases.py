"""Reliability table of the engine (``lcgan_qgis.core``): bad inputs, bad models and failing outputs meet a specific
message, and the output folder is left exactly as it was (no partial file, an old output untouched).

Cases already proven elsewhere (float or RGB land cover, unknown codes, all nodata, 1x1 and 10x3000 rasters, band
mappings, missing or truncated models, cancel...) are listed in ``docs/reliability.md`` with their tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import helper

from lcgan_qgis.core.contract import METADATA_KEY, Direction
from lcgan_qgis.core.engine import TranslateOptions, translate
from lcgan_qgis.core.errors import ContractError, InputRasterError, LcganError, OutputError
from lcgan_qgis.core.gdal_io import GdalReader
from lcgan_qgis.core.runtime import load_model
from tests.core.rasters import read_tif, write_tif
from tests.onnx_factory import default_contract, pointwise_model, save, write_pointwise

from .helpers import Case, assert_no_partials, assert_unchanged, snapshot

REPO = Path(__file__).resolve().parents[2]
CODES = np.array([11, 21, 22, 23, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95], dtype=np.uint8)


def landcover(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return CODES[np.random.default_rng(seed).integers(0, 14, (h, w))]


def imagery(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(6000, 16000, (3, h, w)).astype(np.uint16)


def _model_with_metadata(tmp: Path, direction: str, edit: Any) -> Path:
    """A valid per-pixel model whose lcgan metadata JSON was changed by ``edit(dict)``."""
    contract = default_contract(direction)
    model = pointwise_model(contract)
    meta = contract.to_dict()
    edit(meta)
    del model.metadata_props[:]
    helper.set_model_props(model, {METADATA_KEY: json.dumps(meta)})
    return save(model, tmp / "edited.onnx")


def _static_shape_model(tmp: Path) -> Path:
    """A model exported without dynamic axes: input and output fixed at 256 x 256."""
    model = pointwise_model(default_contract("rgb_to_landcover"))
    for value in (model.graph.input[0], model.graph.output[0]):
        for dim in value.type.tensor_type.shape.dim[2:]:
            dim.ClearField("dim_param")
            dim.dim_value = 256
    return save(model, tmp / "static.onnx")


def _zeros_without_nodata(tmp: Path) -> dict[str, Any]:
    codes = landcover()
    codes[:, :5] = 0  # a collar of zeros, and no nodata value set
    return {"input": write_tif(tmp / "collar.tif", codes), "model": "landcover_to_rgb"}


# Each build returns: input path, model direction (or a model path), options; ``error`` is the exception type.
ENGINE_CASES = [
    Case("rotated geotransform", lambda tmp: {
        "input": write_tif(tmp / "rotated.tif", imagery(), geotransform=(300000.0, 30.0, 5.0, 4150000.0, 5.0, -30.0)),
        "model": "rgb_to_landcover"},
        r"rotated\.tif: the geotransform is rotated or sheared .* lcgan needs a north-up raster\. Warp it first",
        extra={"error": InputRasterError}),
    Case("land cover without nodata value, zero collar", _zeros_without_nodata,
         r"collar\.tif: 1 value\(s\) are not codes of the class scheme .*: 0 \(240 px\)\. Known codes: .* if 0 marks "
         r"pixels without data, set it as the raster's nodata value \(e\.g\. gdal_edit\.py -a_nodata 0\)",
         extra={"error": InputRasterError}),
    Case("all-zero imagery, fixed radiometry", lambda tmp: {
        "input": write_tif(tmp / "zero.tif", np.zeros((3, 48, 64), np.uint16)), "model": "rgb_to_landcover",
        "options": TranslateOptions(radiometry_mode="fixed")},
        r"zero\.tif: every sampled pixel has the same value in every band \(\[0\.0, 0\.0, 0\.0\]\); constant imagery "
        r"cannot be translated\. If that value marks pixels without data, set it as the raster's nodata value",
        extra={"error": InputRasterError}),
    Case("unknown radiometry mode", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()), "model": "rgb_to_landcover",
        "options": TranslateOptions(radiometry_mode="stretch")},
        r"Unknown radiometry mode 'stretch'; choose one of: percentile, fixed", extra={"error": InputRasterError}),
    Case("model with a fixed input shape (cannot be tiled)", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()), "model": _static_shape_model(tmp)},
        r"static\.onnx: input has fixed height/width \[256, 256\]; lcgan needs dynamic H and W \(export with dynamic "
        r"axes\)", extra={"error": ContractError}),
    Case("nested metadata of the wrong type", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()),
        "model": _model_with_metadata(tmp, "rgb_to_landcover",
                                      lambda m: m["scheme"]["classes"][0].update(code="eleven"))},
        r"edited\.onnx: scheme: classes\[0\]\.code must be an integer, got 'eleven'", extra={"error": ContractError}),
    Case("radiometry values that are not numbers", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()),
        "model": _model_with_metadata(tmp, "rgb_to_landcover", lambda m: m["radiometry"].update(low=["a", "b", "c"]))},
        r"edited\.onnx: radiometry needs numeric lists 'low' and 'high'", extra={"error": ContractError}),
    Case("output folder not writable", lambda tmp: {
        "input": write_tif(tmp / "lc.tif", landcover()), "model": "landcover_to_rgb", "output": "/proc/lcgan.tif"},
        r"(Cannot write in the output folder /proc|The output folder /proc is not writable)",
        extra={"error": OutputError}),
    Case("output is a folder", lambda tmp: {
        "input": write_tif(tmp / "lc.tif", landcover()), "model": "landcover_to_rgb", "output": tmp},
        r"is a folder; give a file name", extra={"error": OutputError}),
    Case("output exists, overwriting refused", lambda tmp: {
        "input": write_tif(tmp / "lc.tif", landcover()), "model": "landcover_to_rgb",
        "output": _existing(tmp / "old.tif"), "options": TranslateOptions(overwrite=False)},
        r"The output .*old\.tif exists; remove it or allow overwriting", extra={"error": OutputError}),
]


def _existing(path: Path) -> Path:
    path.write_bytes(b"an earlier result")
    return path


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {d.value: write_pointwise(folder / f"{d.value}.onnx", d) for d in Direction}


@pytest.mark.parametrize("case", ENGINE_CASES, ids=[c.id for c in ENGINE_CASES])
def test_engine_case(case: Case, model_files: dict[str, Path], tmp_path: Path) -> None:
    spec = case.build(tmp_path)
    model = spec["model"]
    model_path = model_files[model] if isinstance(model, str) else model
    output = Path(spec.get("output", tmp_path / "out.tif"))
    before = snapshot(tmp_path)
    with (pytest.raises(case.extra["error"], match=case.message),
          load_model(model_path, "cpu", threads=1) as loaded, GdalReader(spec["input"]) as reader):
        translate(loaded, reader, output, spec.get("options", TranslateOptions()))
    assert_unchanged(tmp_path, before)
    if tmp_path not in (output, *output.parents):
        assert not output.exists()  # nothing written elsewhere either (e.g. under /proc)


DISK_FULL_SCRIPT = """
import resource, signal, sys
from lcgan_qgis.core.engine import translate
from lcgan_qgis.core.errors import OutputError
from lcgan_qgis.core.gdal_io import GdalReader
from lcgan_qgis.core.runtime import load_model

model_path, source, output, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = load_model(model_path, "cpu", threads=1)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    with GdalReader(source) as reader:
        translate(model, reader, output)
except OutputError as exc:
    print(exc)
    sys.exit(3)
"""


def test_disk_full_mid_write_leaves_no_partial_file_and_keeps_the_old_output(model_files: dict[str, Path],
                                                                            tmp_path: Path) -> None:
    """The file system runs out of room after the first block rows: simulated with a file-size limit
    (``RLIMIT_FSIZE``, which even root obeys), so GDAL's writes really fail with EFBIG half-way through the output.
    The run must stop with a message naming the output, delete its temporary file and leave the old output alone."""
    source = write_tif(tmp_path / "lc.tif", landcover(1024, 1024, seed=1))  # ~3 MB of noisy RGB once translated
    old = _existing(tmp_path / "out.tif")
    before = snapshot(tmp_path)
    limit = 256 * 1024  # the first block rows fit, the rest do not
    run = subprocess.run([sys.executable, "-c", DISK_FULL_SCRIPT, str(model_files["landcover_to_rgb"]), str(source),
                          str(old), str(limit)], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 3, run.stdout + run.stderr
    assert f"Cannot write {old}" in run.stdout and "The disk may be full or the file too large" in run.stdout
    assert "free some space or choose another folder" in run.stdout
    assert_unchanged(tmp_path, before)


def test_two_runs_at_once_on_the_same_output_leave_one_whole_result(model_files: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    """Two engine runs (threads of one process, as two scripts could be) write the same file: each writes its own
    temporary file and renames it when done, so both succeed and the output is exactly one of the two results,
    never a mix. (The plugin refuses the second run instead: see the Processing table.)"""
    sources = [write_tif(tmp_path / f"lc{i}.tif", landcover(700, 700, seed=10 + i)) for i in range(2)]
    model = load_model(model_files["landcover_to_rgb"], "cpu", threads=1)
    for i, source in enumerate(sources):  # the two results, written one at a time
        with GdalReader(source) as reader:
            translate(model, reader, tmp_path / f"alone{i}.tif")
    outcomes: list[Any] = []

    def run(source: Path) -> None:
        try:
            with GdalReader(source) as reader:
                outcomes.append(translate(model, reader, tmp_path / "same.tif", TranslateOptions(window_px=128)))
        except LcganError as exc:  # recorded, so that the assertion below shows it
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [type(o).__name__ for o in outcomes] == ["TranslateResult"] * 2, outcomes
    same = read_tif(tmp_path / "same.tif")
    assert any(np.array_equal(same, read_tif(tmp_path / f"alone{i}.tif")) for i in range(2))
    assert_no_partials(tmp_path)
