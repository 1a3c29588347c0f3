"""Reliability table of the engine (``lcgan_qgis.core``): bad inputs, bad models and failing outputs meet a specific
message, and the output folder is left exactly as it was (no partial file, an old output untouched).

Cases already proven elsewhere (float or RGB land cover, unknown codes, all nodata, 1x1 and 10x3000 rasters, band
mappings, missing or truncated models, cancel...) are listed in ``docs/reliability.md`` with their tests.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import helper
from osgeo import gdal

from lcgan_qgis.core.errors import ContractError, InputRasterError, LcganError, ModelFileError, OptionError, OutputError
from lcgan_qgis.core.model.contract import METADATA_KEY, Direction
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.rasters.geotiff import GeoTiffWriter
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.settings import ImageInput, RunSettings, Windowing
from lcgan_qgis.core.storage.files import AtomicFile, commit_all
from lcgan_qgis.tooling.quantize import quantize_model
from tests.fixtures.conv_factory import conv_model, write_conv
from tests.fixtures.landcover import smooth_landcover
from tests.fixtures.onnx_factory import default_contract, pointwise_model, save, write_pointwise
from tests.fixtures.ownership import start_run, user_files
from tests.fixtures.rasters import crs_wkt, read_tif, write_tif

from . import odd_models
from .helpers import Case, assert_no_partials, assert_unchanged, snapshot

REPO = Path(__file__).resolve().parents[2]
CODES = np.array([11, 21, 22, 23, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95], dtype=np.uint8)
PERCENTILE = TranslateOptions(settings=RunSettings(image=ImageInput(radiometry_mode="percentile")))


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


def _vrt_of_vrt(tmp: Path) -> dict[str, Any]:
    """in2.vrt reads in.vrt, which reads lc.tif: writing onto lc.tif would destroy the user's source data."""
    source = write_tif(tmp / "lc.tif", landcover(), nodata=255)
    gdal.BuildVRT(str(tmp / "in.vrt"), [str(source)]).FlushCache()
    gdal.BuildVRT(str(tmp / "in2.vrt"), [str(tmp / "in.vrt")]).FlushCache()
    return {"input": tmp / "in2.vrt", "model": "landcover_to_rgb", "output": source}


def _with_mask(path: Path, pixels: np.ndarray, valid: np.ndarray, nodata: float | None = None) -> Path:
    """A GeoTIFF with a per-dataset mask band in a ``.msk`` side-car (0 = no data)."""
    write_tif(path, pixels, nodata=nodata)
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)
    ds.GetRasterBand(1).GetMaskBand().WriteArray(np.where(valid, 255, 0).astype(np.uint8))
    ds.FlushCache()
    ds = None
    return path


def _mask_sidecar_output(tmp: Path) -> dict[str, Any]:
    source = _with_mask(tmp / "lc.tif", landcover(), np.ones((48, 64), bool), nodata=255)
    return {"input": source, "model": "landcover_to_rgb", "output": Path(f"{source}.msk")}


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.tif")
    return tmp / "pipe.tif"


def _device(tmp: Path) -> Path:
    try:
        os.mknod(tmp / "null.tif", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null twin
    except PermissionError:
        pytest.skip("creating a device node needs root (the FIFO case covers the same rule)")
    return tmp / "null.tif"


def _respelled_confidence(tmp: Path) -> dict[str, Any]:
    (tmp / "o").mkdir()
    return {"input": write_tif(tmp / "img.tif", imagery()), "model": "rgb_to_landcover", "output": tmp / "o" / "c.tif",
            "options": TranslateOptions(confidence_path=str(tmp / "o" / ".." / "o" / "c.tif"))}


def _hard_linked_confidence(tmp: Path) -> dict[str, Any]:
    out = _existing(tmp / "out.tif")
    os.link(out, tmp / "hard.tif")
    return {"input": write_tif(tmp / "img.tif", imagery()), "model": "rgb_to_landcover", "output": out,
            "options": TranslateOptions(confidence_path=str(tmp / "hard.tif"))}


def _gcp_raster(tmp: Path) -> Path:
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp / "gcps.tif"), 64, 48, 3, gdal.GDT_UInt16)
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(imagery()[b])
    gcps = [gdal.GCP(300000.0 + 30 * x, 4150000.0 - 30 * y, 0.0, x, y) for x, y in ((0, 0), (64, 0), (0, 48), (64, 48))]
    ds.SetGCPs(gcps, crs_wkt())
    ds.FlushCache()
    ds = None
    return tmp / "gcps.tif"


def _ungeoreferenced(tmp: Path) -> Path:
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp / "plain.tif"), 64, 48, 3, gdal.GDT_UInt16)
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(imagery()[b])
    ds.FlushCache()
    ds = None
    return tmp / "plain.tif"


def _odd(tmp: Path, direction: str, **kwargs: Any) -> Path:
    return odd_models.save(odd_models.odd_model(default_contract(direction), **kwargs), tmp / "odd.onnx")


def _nested(tmp: Path) -> Path:
    contract = default_contract("rgb_to_landcover")
    model = odd_models.with_metadata_text(pointwise_model(contract), odd_models.deeply_nested_metadata(contract))
    return odd_models.save(model, tmp / "nested.onnx")


#: The area of interest cases: polygons in the CRS of ``write_tif``'s raster (x from 300000, y down from 4150000).
UNCLOSED = "POLYGON((300000 4150000, 300300 4150000, 300300 4149700))"
SUB_PIXEL = "POLYGON((300001 4149999, 300002 4149999, 300002 4149998, 300001 4149998, 300001 4149999))"


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
        "options": TranslateOptions(settings=RunSettings(image=ImageInput(radiometry_mode="fixed")))},
        r"zero\.tif: every sampled pixel has the same value in every band \(\[0\.0, 0\.0, 0\.0\]\); constant imagery "
        r"cannot be translated\. If that value marks pixels without data, set it as the raster's nodata value",
        extra={"error": InputRasterError}),
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
    Case("output is a file the input VRT reads", _vrt_of_vrt,
         r"The output .*lc\.tif is .*lc\.tif, a file the input raster reads; choose another file name",
         extra={"error": OutputError}),
    Case("output is the input's mask side-car", _mask_sidecar_output,
         r"The output .*lc\.tif\.msk is .*lc\.tif\.msk, a file the input raster reads", extra={"error": OutputError}),
    Case("output with another extension than .tif", lambda tmp: {
        "input": write_tif(tmp / "lc.tif", landcover()), "model": "landcover_to_rgb", "output": tmp / "out.png"},
        r"The output .*out\.png must be a GeoTIFF \(\.tif or \.tiff\)", extra={"error": OutputError}),
    Case("output is a named pipe (FIFO)", lambda tmp: {
        "input": write_tif(tmp / "lc.tif", landcover()), "model": "landcover_to_rgb", "output": _fifo(tmp)},
        r"The output .*pipe\.tif is a named pipe \(FIFO\), not a file", extra={"error": OutputError}),
    Case("output is a device", lambda tmp: {
        "input": write_tif(tmp / "lc.tif", landcover()), "model": "landcover_to_rgb", "output": _device(tmp)},
        r"The output .*null\.tif is a character device, not a file", extra={"error": OutputError}),
    Case("output name too long for the file system", lambda tmp: {
        "input": write_tif(tmp / "lc.tif", landcover()), "model": "landcover_to_rgb",
        "output": tmp / ("x" * 300 + ".tif")},
        r"The output file name is 304 bytes long; the file system of .* allows at most 255, and GDAL's \.aux\.xml "
        r"side-car of the file needs 8 more \(247 at most\)\. Choose a shorter name",
        extra={"error": OutputError}),
    Case("confidence output is the output under another spelling", _respelled_confidence,
         r"The output and the confidence output are the same file", extra={"error": OutputError}),
    Case("confidence output is a hard link of the output", _hard_linked_confidence,
         r"The output and the confidence output are the same file", extra={"error": OutputError}),
    Case("GCP-georeferenced raster", lambda tmp: {"input": _gcp_raster(tmp), "model": "rgb_to_landcover"},
         r"gcps\.tif: is georeferenced by 4 ground control points \(GCPs\), not by a geotransform.* Warp it first",
         extra={"error": InputRasterError}),
    Case("ungeoreferenced raster", lambda tmp: {"input": _ungeoreferenced(tmp), "model": "rgb_to_landcover"},
         r"plain\.tif: has no georeference \(no geotransform, no ground control points\).* Georeference it first",
         extra={"error": InputRasterError}),
    Case("unclosed area of interest", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()), "model": "rgb_to_landcover",
        "options": TranslateOptions(settings=RunSettings(aoi_wkt=UNCLOSED))},
        r"The area of interest is not a closed polygon: ring 1 of polygon 1 has 3 point\(s\)",
        extra={"error": OptionError}),
    Case("area of interest smaller than a pixel", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()), "model": "rgb_to_landcover",
        "options": TranslateOptions(settings=RunSettings(aoi_wkt=SUB_PIXEL))},
        r"The area of interest .* contains no pixel centre of .*img\.tif \(its pixels are 30 x 30 CRS units\)",
        extra={"error": OptionError}),
    Case("model output of another height and width", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()), "model": _odd(tmp, "rgb_to_landcover", crop_px=4)},
        r"odd\.onnx: for an input of shape \[1, 3, (\d+), (\d+)\] the model returned an array of shape "
        r"\[1, 14, \d+, \d+\] \(float32\); a rgb_to_landcover model must return float32 \[1, 14, \1, \2\]",
        extra={"error": ModelFileError}),
    Case("model output larger than its input", lambda tmp: {
        "input": write_tif(tmp / "lc.tif", landcover()), "model": _odd(tmp, "landcover_to_rgb", pad_px=8)},
        r"odd\.onnx: for an input of shape \[1, 14, \d+, \d+\] the model returned an array of shape \[1, 3, ",
        extra={"error": ModelFileError}),
    Case("model output of another batch size", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()), "model": _odd(tmp, "rgb_to_landcover", batch_factor=2)},
        r"the model returned an array of shape \[2, 14, ", extra={"error": ModelFileError}),
    Case("model returning NaN", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()), "model": _odd(tmp, "rgb_to_landcover", add=float("nan"))},
        r"odd\.onnx: the model returned \d+ non-finite value\(s\) \(nan\) .* probabilities must be finite numbers "
        r"in \[0, 1\]\. The model is broken", extra={"error": ModelFileError}),
    Case("model returning Inf", lambda tmp: {
        "input": write_tif(tmp / "lc.tif", landcover()),
        "model": _odd(tmp, "landcover_to_rgb", add=float("inf"), final="none")},
        r"odd\.onnx: the model returned \d+ non-finite value\(s\) \(inf\) .* image values must be finite",
        extra={"error": ModelFileError}),
    Case("model returning negative probabilities", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()), "model": _odd(tmp, "rgb_to_landcover", final="tanh")},
        r"odd\.onnx: the model returned probabilities from -\S+ to \S+, outside \[0, 1\] \(a rgb_to_landcover "
        r"graph must end in Softmax\)", extra={"error": ModelFileError}),
    Case("deeply nested metadata", lambda tmp: {"input": write_tif(tmp / "img.tif", imagery()), "model": _nested(tmp)},
         r"nested\.onnx: metadata 'lcgan' is nested too deeply to be read", extra={"error": ContractError}),
    Case("band names that are not strings", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()),
        "model": _model_with_metadata(tmp, "rgb_to_landcover", lambda m: m.update(band_names=[1, 2, 3]))},
        r"edited\.onnx: band_names must be non-empty strings, got \[1, 2, 3\]", extra={"error": ContractError}),
    Case("nodata code outside the output type", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()),
        "model": _model_with_metadata(tmp, "rgb_to_landcover", lambda m: m["scheme"].update(nodata_code=70000))},
        r"edited\.onnx: .*nodata code 70000 is outside 0\.\.65535", extra={"error": ContractError}),
    Case("radiometry numbers given as strings", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()),
        "model": _model_with_metadata(tmp, "rgb_to_landcover",
                                      lambda m: m["radiometry"].update(low=["6000", "6500", "7000"]))},
        r"edited\.onnx: radiometry needs numeric lists .*'low' is \['6000', '6500', '7000'\]",
        extra={"error": ContractError}),
    Case("scheme name that is not a string", lambda tmp: {
        "input": write_tif(tmp / "img.tif", imagery()),
        "model": _model_with_metadata(tmp, "rgb_to_landcover", lambda m: m["scheme"].update(name=42))},
        r"edited\.onnx: scheme: the scheme's name must be a non-empty string of at most 200 characters, got 42",
        extra={"error": ContractError}),
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
from lcgan_qgis.core.run.engine import translate
from lcgan_qgis.core.errors import OutputError
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.model.runtime import load_model

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
                options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=128)))
                outcomes.append(translate(model, reader, tmp_path / "same.tif", options))
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


def _rgba(tmp: Path) -> Path:
    """Imagery with an alpha band: the 8 left columns are transparent (alpha 0)."""
    pixels = imagery()
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp / "rgba.tif"), 64, 48, 4, gdal.GDT_UInt16,
                                              ["PHOTOMETRIC=RGB", "ALPHA=YES"])
    ds.SetGeoTransform((300000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0))
    ds.SetProjection(crs_wkt())
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(pixels[b])
    alpha = np.full((48, 64), 65535, np.uint16)
    alpha[:, :8] = 0
    ds.GetRasterBand(4).WriteArray(alpha)
    ds.FlushCache()
    ds = None
    return tmp / "rgba.tif"


def _left_columns_are_nodata(columns: int, nodata: int) -> Any:
    def check(out: Path, result: Any) -> None:
        pixels = read_tif(out)
        assert (pixels[:, :, :columns] == nodata).all() and (pixels[:, :, columns:] != nodata).all()
        assert not any("has 4 bands" in m for m in result.messages), result.messages  # alpha is not a data band
    return check


def _masked_landcover(tmp: Path) -> Path:
    """Land cover whose top 10 rows are masked out (a ``.msk`` side-car) and hold 0, which is no class code: read
    as valid, they would be refused as unknown codes."""
    codes = landcover()
    codes[:10] = 0
    valid = np.ones(codes.shape, bool)
    valid[:10] = False
    return _with_mask(tmp / "masked.tif", codes, valid)


def _top_rows_are_nodata(out: Path, _result: Any) -> None:
    pixels = read_tif(out)
    assert (pixels[:, :10] == 0).all() and (pixels[:, 10:] > 0).all()


def _float_with_inf(tmp: Path) -> Path:
    pixels = imagery().astype(np.float32)
    pixels[0, 5, 5], pixels[2, 7, 9] = np.inf, -np.inf
    return write_tif(tmp / "inf.tif", pixels)


def _inf_pixels_are_nodata(out: Path, _result: Any) -> None:
    codes = read_tif(out)[0]
    assert codes[5, 5] == 255 and codes[7, 9] == 255 and (codes != 255).sum() == codes.size - 2


def _zipped(tmp: Path) -> str:
    source = write_tif(tmp / "lc.tif", landcover())
    with zipfile.ZipFile(tmp / "lc.zip", "w") as archive:
        archive.write(source, "inside/lc.tif")
    source.unlink()
    return f"/vsizip/{tmp / 'lc.zip'}/inside/lc.tif"


def _same_grid_as(source: Path) -> Any:
    def check(out: Path, _result: Any) -> None:
        src, ds = gdal.Open(str(source)), gdal.Open(str(out))
        assert ds.GetGeoTransform() == src.GetGeoTransform() and ds.RasterXSize == src.RasterXSize
    return check


def _stale_partials(tmp: Path) -> dict[str, Any]:
    """What a killed run left (a partial GeoTIFF and its side-car, a scratch folder, all claimed in its ledger); the
    user's look-alikes (a ``.lcgan-*`` folder, a hidden ``*.lcgan-partial*`` file), which must stay; and the partial
    of a run still writing, which must be kept."""
    user = user_files(tmp)
    child = start_run(tmp)
    child.kill()
    child.wait()
    stale = [p for p in tmp.iterdir() if p not in user and not p.name.startswith(".lcgan-run-")]
    live = GeoTiffWriter(tmp / "other.tif", 8, 8, 1, np.uint8, (0.0, 1.0, 0.0, 0.0, 0.0, -1.0), "")
    return {"input": write_tif(tmp / "lc.tif", landcover()), "model": "landcover_to_rgb", "live": live,
            "stale": stale, "user": user}


def _stale_removed_live_kept(out: Path, result: Any, spec: dict[str, Any]) -> None:
    live = spec["live"]
    try:
        assert len(spec["stale"]) == 3 and not any(p.exists() for p in spec["stale"])
        assert all(p.exists() for p in spec["user"])  # never the user's, whatever their names
        assert live.temp_path.exists()  # a run still writing keeps its file
        assert any(m.startswith("Removed 3 partial file(s) left by interrupted lcgan runs in ") for m in
                   result.messages), result.messages
    finally:
        live.abort()


def _umask_permissions(tmp: Path) -> dict[str, Any]:
    return {"input": write_tif(tmp / "lc.tif", landcover()), "model": "landcover_to_rgb", "umask": 0o022}


def _mode_is(mode: int) -> Any:
    def check(out: Path, _result: Any) -> None:
        assert stat.S_IMODE(out.stat().st_mode) == mode, oct(out.stat().st_mode)
    return check


# build(tmp) -> {input, model, output?, options?, umask?}; check(output, result[, spec]) looks at the result.
ENGINE_WORKING = [
    Case("RGBA imagery: transparent pixels are nodata", lambda tmp: {
        "input": _rgba(tmp), "model": "rgb_to_landcover", "options": PERCENTILE},
        None, _left_columns_are_nodata(8, 255)),
    Case("land cover with a mask band: masked pixels are nodata", lambda tmp: {
        "input": _masked_landcover(tmp), "model": "landcover_to_rgb"}, None, _top_rows_are_nodata),
    Case("float imagery with Inf: Inf is nodata like NaN", lambda tmp: {
        "input": _float_with_inf(tmp), "model": "rgb_to_landcover",
        "options": PERCENTILE}, None, _inf_pixels_are_nodata),
    Case("GDAL subdataset string", lambda tmp: {
        "input": f"GTIFF_DIR:1:{write_tif(tmp / 'lc.tif', landcover())}", "model": "landcover_to_rgb"},
        None, lambda out, _r: _same_grid_as(out.parent / "lc.tif")(out, _r)),
    Case("/vsizip path", lambda tmp: {"input": _zipped(tmp), "model": "landcover_to_rgb"}, None,
         lambda out, _r: gdal.Open(str(out)).RasterXSize == 64 or pytest.fail("wrong size")),
    Case("output name at the file-system limit", lambda tmp: {
        "input": write_tif(tmp / "lc.tif", landcover()), "model": "landcover_to_rgb",
        "output": tmp / ("x" * 243 + ".tif")}, None, lambda out, _r: _same_grid_as(out.parent / "lc.tif")(out, _r)),
    Case("output permissions follow the umask", _umask_permissions, None, _mode_is(0o644)),
    Case("partial files of killed runs are removed by the next run", _stale_partials, None, _stale_removed_live_kept),
]


@pytest.mark.parametrize("case", ENGINE_WORKING, ids=[c.id for c in ENGINE_WORKING])
def test_engine_handles(case: Case, model_files: dict[str, Path], tmp_path: Path) -> None:
    spec = case.build(tmp_path)
    model = model_files[spec["model"]]
    output = Path(spec.get("output", tmp_path / "out.tif"))
    previous = os.umask(spec["umask"]) if "umask" in spec else None
    try:
        with load_model(model, "cpu", threads=1) as loaded, GdalReader(spec["input"]) as reader:
            result = translate(loaded, reader, output, spec.get("options", TranslateOptions()))
    finally:
        if previous is not None:
            os.umask(previous)
    assert result.output_path == str(output) and output.is_file()
    assert case.check is not None
    if "live" in spec:
        case.check(output, result, spec)
    else:
        case.check(output, result)
        assert_no_partials(tmp_path)


def _cli(*args: str, cwd: Path = REPO, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lcgan_qgis", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                                            "MALLOC_ARENA_MAX": "2"}, **kwargs)


def _sparse_landcover(path: Path, size: int) -> Path:
    """A ``size`` x ``size`` land cover stored sparse (a few kB): every unwritten tile reads as 0, no class code, and
    no nodata value is set. 16 x 16 pixels of a real code sit in the corner."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, 1, gdal.GDT_Byte,
                                              ["TILED=YES", "SPARSE_OK=TRUE", "COMPRESS=DEFLATE"])
    ds.SetGeoTransform((300000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0))
    ds.SetProjection(crs_wkt())
    ds.GetRasterBand(1).WriteArray(np.full((16, 16), 42, np.uint8), 0, 0)
    ds = None
    return path


MEMORY_LIMIT_MB = 1024


def test_unknown_codes_of_a_large_sparse_raster_are_refused_in_bounded_memory(model_files: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    """A 20000 x 20000 land cover (400 Mpx) whose pixels are all 0 (unknown) through the command line, whose address
    space is limited to 1 GiB (``RLIMIT_AS``): the refusal names the code with its count and says where the scan
    stopped. Building the message from one integer per bad pixel needed 3.2 GB (MemoryError)."""
    source = _sparse_landcover(tmp_path / "sparse.tif", 20000)
    limit = MEMORY_LIMIT_MB * 2**20

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    before = snapshot(tmp_path)
    run = _cli("translate", "--model", str(model_files["landcover_to_rgb"]), "--input", str(source), "--output",
               str(tmp_path / "out.tif"), "--device", "cpu", "--threads", "1", preexec_fn=limit_memory)
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr
    assert re.search(r"sparse\.tif: 1 value\(s\) are not codes of the class scheme .*: 0 \([\d,]+ px\) in rows "
                     r"1-[\d,]+ of 20,000 \(the scan stopped there; there may be more\)\..* if 0 marks pixels without "
                     r"data, set it as the raster's nodata value", run.stderr), run.stderr
    assert_unchanged(tmp_path, before)


class _CountingReader:
    """A GDAL reader that records the full-width reads (the pre-scan's strips)."""

    def __init__(self, path: Path) -> None:
        self.inner = GdalReader(path)
        self.info = self.inner.info
        self.strips = 0

    def read(self, window: Any, bands: Any) -> np.ndarray:
        if window.width == self.info.width and window.width > 64:
            self.strips += 1
        return self.inner.read(window, bands)


def test_ctrl_c_during_the_imagery_pre_scan_stops_it(model_files: dict[str, Path], tmp_path: Path) -> None:
    """Imagery whose only valid pixels lie between the percentile sample's windows is scanned in full before the
    run starts; a cancel during that scan stops it at the next strip, and nothing is written."""
    pixels = np.zeros((3, 2000, 2000), np.uint16)
    pixels[:, 1880:1890, 80:90] = 9000  # missed by the sample (windows at rows ...1807-1871, 1936-2000)
    reader = _CountingReader(write_tif(tmp_path / "img.tif", pixels, nodata=0))
    before = snapshot(tmp_path)
    with load_model(model_files["rgb_to_landcover"], "cpu", threads=1) as model:
        options = PERCENTILE
        result = translate(model, reader, tmp_path / "out.tif", options,
                           is_canceled=lambda: reader.strips > 0)
    assert result.canceled and result.output_path is None
    assert reader.strips == 1  # of 8: the scan stopped at once
    assert_unchanged(tmp_path, before)


def _wait_for_partial(folder: Path, process: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not list(folder.glob(".*lcgan-partial.tif")):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run wrote no partial file"
        time.sleep(0.02)


def _start_long_translation(model: Path, folder: Path) -> subprocess.Popen:
    source = write_tif(folder / "big.tif", landcover(2400, 2400, seed=3), nodata=255)
    out = folder / "out"
    out.mkdir()
    return subprocess.Popen([sys.executable, "-m", "lcgan_qgis", "translate", "--model", str(model), "--input",
                             str(source), "--output", str(out / "big_rgb.tif"), "--window", "64", "--overlap", "8",
                             "--threads", "1", "--device", "cpu"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO),
                                                                    "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_cancels_the_command_line_and_leaves_no_partial_file(signum: int, model_files: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    """``kill`` (SIGTERM) or a closed terminal (SIGHUP) while the output is being written: the run stops at the next
    batch, removes its temporary file and exits with 128 + the signal, like a shell."""
    process = _start_long_translation(model_files["landcover_to_rgb"], tmp_path)
    try:
        _wait_for_partial(tmp_path / "out", process)
        process.send_signal(signum)
        _out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, err[-3000:]
    assert f"cancelled: nothing was written ({signal.Signals(signum).name})" in err
    assert list((tmp_path / "out").iterdir()) == []


def test_a_run_killed_mid_write_leaves_a_partial_file_that_the_next_run_removes(model_files: dict[str, Path],
                                                                                tmp_path: Path) -> None:
    """``kill -9`` cannot be handled: its temporary file stays. The next run writing into that folder finds it in
    the killed run's ledger (no live run holds its lock), removes it and says so."""
    process = _start_long_translation(model_files["landcover_to_rgb"], tmp_path)
    try:
        _wait_for_partial(tmp_path / "out", process)
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    left = list((tmp_path / "out").glob(".*lcgan-partial.tif"))
    assert len(left) == 1
    run = _cli("translate", "--model", str(model_files["landcover_to_rgb"]), "--input",
               str(write_tif(tmp_path / "small.tif", landcover())), "--output", str(tmp_path / "out" / "small.tif"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"note: Removed 1 partial file(s) left by interrupted lcgan runs in {tmp_path / 'out'}: {left[0].name}" in \
        run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small.tif"]


def test_outputs_are_replaced_all_or_nothing(tmp_path: Path) -> None:
    """Two finished outputs are moved into place together: when the second rename fails, the first output gets its
    earlier content back (what a failing resampled run with a confidence raster relies on)."""
    first, second = tmp_path / "lc.tif", tmp_path / "conf.tif"
    first.write_bytes(b"the earlier result")
    second.mkdir()  # cannot be replaced by a file
    new_first, new_second = AtomicFile(first), AtomicFile(second)
    new_first.temp_path.write_bytes(b"new land cover")
    new_second.temp_path.write_bytes(b"new confidence")
    with pytest.raises(OSError):
        commit_all([new_first, new_second])
    assert first.read_bytes() == b"the earlier result" and second.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf.tif", "lc.tif"]  # no temporary or backup file


def test_info_shows_control_characters_of_metadata_as_text(tmp_path: Path) -> None:
    """A description holding terminal escape sequences (clear screen, set the window title, a bell) is printed with
    them escaped, never executed by the user's terminal."""
    hostile = "\x1b[2J\x1b]0;owned\x07 a model\rX"
    path = odd_models.save(pointwise_model(default_contract("rgb_to_landcover", description=hostile)),
                           tmp_path / "hostile.onnx")
    run = _cli("info", str(path), "--device", "cpu")
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout and "\x07" not in run.stdout and "\r" not in run.stdout
    assert r"description:  \x1b[2J\x1b]0;owned\x07 a model\rX" in run.stdout


def test_info_on_deeply_nested_metadata_is_one_line(tmp_path: Path) -> None:
    run = _cli("info", str(_nested(tmp_path)), "--device", "cpu")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.stderr.strip().count("\n") == 0
    assert "nested.onnx: metadata 'lcgan' is nested too deeply to be read" in run.stderr


def test_quantize_refuses_to_overwrite_its_own_model(tmp_path: Path) -> None:
    model = write_conv(tmp_path / "m.onnx", "landcover_to_rgb")
    raster = write_tif(tmp_path / "lc.tif", landcover(128, 128))
    before = snapshot(tmp_path)
    run = _cli("quantize", "--model", str(model), "--calibration", str(raster), "--output",
               str(tmp_path / "." / "m.onnx"), "--windows", "2")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "The output" in run.stderr and "m.onnx is the model it quantises; choose another file name (e.g. " \
        "m.int8.onnx)" in run.stderr
    assert_unchanged(tmp_path, before)


def test_quantize_compares_with_the_float_model_even_when_an_int8_copy_exists(tmp_path: Path) -> None:
    """``M.int8.onnx`` exists (from an earlier quantisation, here of other weights): the new int8 copy must be
    calibrated and compared against ``M.onnx`` itself, not against that sibling."""
    contract = default_contract("landcover_to_rgb", tile_size_px=128)
    model = odd_models.save(conv_model(contract, seed=0), tmp_path / "m.onnx")
    odd_models.save(conv_model(contract, seed=5), tmp_path / "m.int8.onnx")  # same contract, other weights
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(256, 256))
    report = quantize_model(model, raster, tmp_path / "fresh.int8.onnx", windows=4, window_px=128, float_first=False)
    assert report.metric == "psnr_db" and report.value > 30, report.summary
