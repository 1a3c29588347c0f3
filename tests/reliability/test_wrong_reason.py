"""Wrong or hidden reasons (issue 24): each situation gets its own one-line message on the command line (exit 2, no
traceback) and nothing is written; situations that must work say what they did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from osgeo import gdal

from lcgan_qgis.core.errors import ContractError, ModelFileError
from lcgan_qgis.core.model.contract import METADATA_KEY
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.tooling.quantize import quantize_model
from tests.fixtures.onnx_factory import (
    default_contract,
    pointwise_model,
    save,
    write_pointwise,
    write_terrain_pointwise,
)
from tests.fixtures.rasters import crs_wkt, write_tif
from training.checkpoints import save_atomic
from training.errors import TrainingError

REPO = Path(__file__).resolve().parents[2]
CODES = np.array([11, 21, 41, 42, 52, 71, 81, 82, 90, 31], np.uint8)


def _cli(*args: str) -> tuple[int, str]:
    run = subprocess.run([sys.executable, "-m", "lcgan_qgis", *args], cwd=REPO, capture_output=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    return run.returncode, run.stderr.decode("utf-8", "replace")


def _lc(t: Path, name: str = "lc.tif") -> Path:
    return write_tif(t / name, CODES[np.random.default_rng(0).integers(0, 10, (64, 64))])


def _img(t: Path, name: str = "img.tif") -> Path:
    return write_tif(t / name, np.random.default_rng(0).integers(6000, 16000, (3, 64, 64)).astype(np.uint16))


def _opset99(t: Path) -> list[str]:
    model = pointwise_model(default_contract("rgb_to_landcover"))
    model.opset_import[0].version = 99
    onnx.save(model, str(t / "op99.onnx"))
    return ["translate", "--model", str(t / "op99.onnx"), "--input", str(_img(t)), "--output", str(t / "out.tif")]


def _fixed_batch(t: Path) -> list[str]:
    model = pointwise_model(default_contract("rgb_to_landcover"))
    for value in (model.graph.input[0], model.graph.output[0]):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = 1
    save(model, t / "fixed.onnx")
    return ["translate", "--model", str(t / "fixed.onnx"), "--input", str(_img(t)), "--output", str(t / "out.tif"),
            "--batch", "4", "--window", "32"]


def _palette(t: Path) -> list[str]:
    ds = gdal.GetDriverByName("GTiff").Create(str(t / "pal.tif"), 64, 64, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((300000, 30, 0, 4150000, 0, -30))
    ds.SetProjection(crs_wkt())
    table = gdal.ColorTable()
    for i in range(256):
        table.SetColorEntry(i, (i, 255 - i, (7 * i) % 256, 255))
    band = ds.GetRasterBand(1)
    band.SetRasterColorTable(table)
    band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    band.WriteArray(np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8))
    ds = None
    return ["translate", "--model", str(write_pointwise(t / "m.onnx", "rgb_to_landcover")), "--input",
            str(t / "pal.tif"), "--output", str(t / "out.tif")]


def _geographic(t: Path, gt: tuple[float, ...]) -> list[str]:
    lc = write_tif(t / "deg.tif", CODES[np.random.default_rng(0).integers(0, 10, (64, 64))], geotransform=gt,
                   epsg=4326)
    return ["translate", "--model", str(write_pointwise(t / "m.onnx", "landcover_to_rgb")), "--input", str(lc),
            "--output", str(t / "out.tif")]


def _non_utf8_input(t: Path) -> list[str]:
    bad = os.fsdecode(os.fsencode(str(t)) + b"/carte_\xe9t\xe9.tif")
    Path(bad).write_bytes(_lc(t, "src.tif").read_bytes())
    return ["translate", "--model", str(write_pointwise(t / "m.onnx", "landcover_to_rgb")), "--input", bad,
            "--output", str(t / "out.tif")]


def _non_utf8_output(t: Path) -> list[str]:
    return ["translate", "--model", str(write_pointwise(t / "m.onnx", "landcover_to_rgb")), "--input", str(_lc(t)),
            "--output", os.fsdecode(os.fsencode(str(t)) + b"/r\xe9sultat.tif")]


def _terrain(t: Path, dem: Path | str) -> list[str]:
    return ["translate", "--model", str(write_terrain_pointwise(t / "terr.onnx")), "--input", str(_lc(t)),
            "--elevation", str(dem), "--output", str(t / "out.tif")]


def _class_map_dem(t: Path) -> Path:
    dem = _lc(t, "classes.tif")
    ds = gdal.Open(str(dem), gdal.GA_Update)
    table = gdal.ColorTable()
    table.SetColorEntry(11, (0, 0, 255, 255))
    ds.GetRasterBand(1).SetRasterColorTable(table)
    ds = None
    return dem


CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("opset-99 model", _opset99, r"it needs ONNX operator set 99, newer than onnxruntime .* export the model with "
                                 r"opset \d+ or lower"),
    ("fixed-batch model with --batch 4", _fixed_batch, r"takes exactly 1 window\(s\) per batch .* use --batch 1"),
    ("--window 4 --overlap 0", lambda t: ["translate", "--model", str(write_pointwise(t / "m.onnx",
                                                                                      "rgb_to_landcover")),
                                          "--input", str(_img(t)), "--output", str(t / "out.tif"), "--window", "4",
                                          "--overlap", "0"], r"of 4 px is below the smallest a generator takes"),
    ("--window 30000", lambda t: ["translate", "--model", str(write_pointwise(t / "m.onnx", "rgb_to_landcover")),
                                  "--input", str(_img(t)), "--output", str(t / "out.tif"), "--window", "30000"],
     r"of 30000 px with a batch \(--batch, batch_size\) of 1 needs about .* use --window \d+ or less"),
    ("palette (colour-table) imagery", _palette,
     r"It is a palette \(colour-table\) image: .*gdal_translate -expand rgb"),
    ("latitude beyond 90", lambda t: _geographic(t, (10, 0.001, 0, 95, 0, -0.001)),
     r"reaches latitude 95°, beyond \+-90°: its geotransform or CRS is wrong"),
    ("latitude below -90", lambda t: _geographic(t, (10, 0.001, 0, -89.99, 0, -0.001)), r"reaches latitude -90\.05"),
    ("longitudes beyond one turn", lambda t: _geographic(t, (500, 0.001, 0, 40, 0, -0.001)),
     r"spans longitudes 500° to 500\.064°, beyond one turn"),
    ("metres written as degrees", lambda t: _geographic(t, (300000, 30, 0, 4150000, 0, -30)),
     r"reaches latitude 4\.15e\+06°"),
    ("non-UTF-8 input name", _non_utf8_input, r"The input raster .*carte_\\xe9t\\xe9\.tif has a name that is not UTF-8 "
                                              r"text \(byte 0xe9\)"),
    ("non-UTF-8 output name", _non_utf8_output, r"The output .*r\\xe9sultat\.tif has a name that is not UTF-8 text"),
    ("3-band image as DEM", lambda t: _terrain(t, _img(t)),
     r"has 3 bands \(colour imagery\?\); a DEM is one band of heights"),
    ("the land cover itself as DEM", lambda t: _terrain(t, t / "lc.tif"),
     r"The elevation raster .*lc\.tif is .*lc\.tif, which the land-cover input .* reads"),
    ("the land cover as DEM through GTIFF_DIR", lambda t: _terrain(t, f"GTIFF_DIR:1:{t / 'lc.tif'}"),
     r"which the land-cover input .* reads: a DEM holds heights"),
    ("a class map as DEM", lambda t: _terrain(t, _class_map_dem(t)), r"a class map, not heights"),
]


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_command_line_names_the_real_reason(tmp_path: Path, build: Callable[[Path], list[str]],
                                                message: str) -> None:
    args = build(tmp_path)
    before = sorted(os.listdir(os.fsencode(str(tmp_path))))
    code, err = _cli(*args)
    assert code == 2 and "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[-3000:]
    import re

    assert re.search(message, lines[0]), lines[0]
    assert sorted(os.listdir(os.fsencode(str(tmp_path)))) == before  # nothing written


def test_float64_beyond_float32_is_nodata_not_one_class(tmp_path: Path) -> None:
    """Before: the values overflowed to inf in the model's float32 input: one class everywhere (or a "broken model"
    error). Now such pixels are nodata, like Inf, and the rest translate."""
    pixels = np.random.default_rng(0).uniform(0, 1, (3, 64, 64))
    pixels[:, :10] = 1e300
    src = write_tif(tmp_path / "f64.tif", pixels)
    code, err = _cli("translate", "--model", str(write_pointwise(tmp_path / "m.onnx", "rgb_to_landcover")), "--input",
                     str(src), "--output", str(tmp_path / "out.tif"), "--radiometry", "percentile")
    assert code == 0, err[-2000:]
    out = gdal.Open(str(tmp_path / "out.tif")).ReadAsArray()
    assert (out[:10] == 255).all() and (out[10:] != 255).all()


def test_quantising_an_int8_model_says_so(tmp_path: Path) -> None:
    model = pointwise_model(default_contract("rgb_to_landcover"))
    graph = model.graph
    graph.initializer.extend([onnx.numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                              onnx.numpy_helper.from_array(np.array(0, np.uint8), "z")])
    graph.node.insert(0, helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]))
    graph.node.insert(1, helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]))
    graph.node[2].input[0] = "dq"
    path = save(model, tmp_path / "m.int8.onnx")
    with pytest.raises(ModelFileError, match=r"m\.int8\.onnx is already quantised \(it holds DequantizeLinear, "
                                             r"QuantizeLinear nodes\); quantise its float model instead "
                                             r"\(e\.g\. m\.onnx"):
        quantize_model(path, _img(tmp_path), tmp_path / "twice.onnx", windows=1)
    assert not (tmp_path / "twice.onnx").exists()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda meta: meta.update(extra="x" * 60_000_000), r"metadata 'lcgan' is 60\.0 MB; an lcgan contract is a few kB"),
    (lambda meta: meta["scheme"]["classes"][0].update(name="n" * 5_000_000), r"metadata 'lcgan' is 5\.0 MB"),
    (lambda meta: meta["scheme"]["classes"][0].update(name="n" * 1000),
     r"classes\[0\] \(code \d+\) has a name of 1,000 characters; at most 200"),
    (lambda meta: meta["scheme"].update(name="s" * 1000),
     r"the scheme's name must be a non-empty string of at most 200"),
])
def test_oversized_metadata_is_refused_before_it_is_parsed(tmp_path: Path, edit: Callable, message: str) -> None:
    contract = default_contract("rgb_to_landcover")
    model = pointwise_model(contract)
    meta = contract.to_dict()
    edit(meta)
    del model.metadata_props[:]
    helper.set_model_props(model, {METADATA_KEY: json.dumps(meta)})
    path = save(model, tmp_path / "big.onnx")
    with pytest.raises((ContractError, ValueError), match=message):
        load_model(path, "cpu")


DISK_FULL_CHECKPOINT = """
import resource, sys, torch
from pathlib import Path
from training.checkpoints import save_atomic
from training.errors import TrainingError
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
try:
    save_atomic({"step": 1, "weights": torch.ones(1024 * 1024)}, Path(sys.argv[1]))
except TrainingError as exc:
    print(exc)
    sys.exit(3)
"""


def _script(code: str, path: Path) -> subprocess.CompletedProcess:
    """``code`` in a child Python (its file-size limit stays its own) with ``path`` as its argument."""
    return subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_full_disk_during_a_checkpoint_names_the_space_and_what_to_do(tmp_path: Path) -> None:
    run = _script(DISK_FULL_CHECKPOINT, tmp_path / "last.pt")
    assert run.returncode == 3, run.stderr[-2000:]
    assert f"Cannot write checkpoint {tmp_path / 'last.pt'}" in run.stdout and "MB free in" in run.stdout
    assert "free some space and run the same command to resume" in run.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_save_atomic_is_still_whole_when_there_is_room(tmp_path: Path) -> None:
    save_atomic({"step": 1, "weights": torch.ones(4)}, tmp_path / "last.pt")
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 1
    with pytest.raises(TrainingError):
        save_atomic({"step": 1}, tmp_path / "missing" / "last.pt")


DISK_FULL_OVERVIEWS = """
import os, resource, signal, sys
import numpy as np
from osgeo import gdal
from lcgan_qgis.core.errors import OutputError
from lcgan_qgis.core.rasters.geotiff import build_overviews
path = sys.argv[1]
ds = gdal.GetDriverByName("GTiff").Create(path, 2048, 2048, 3, gdal.GDT_Byte, ["TILED=YES"])
for b in range(3):
    ds.GetRasterBand(b + 1).WriteArray(np.random.default_rng(b).integers(0, 255, (2048, 2048)).astype(np.uint8))
ds.FlushCache()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
size = os.path.getsize(path)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 64 * 1024, size + 64 * 1024))  # the full-size data fit, no more
try:
    build_overviews(ds, False, path)
except OutputError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_full_disk_while_overviews_are_built_names_the_output_and_what_to_do(tmp_path: Path) -> None:
    run = _script(DISK_FULL_OVERVIEWS, tmp_path / "out.tif")
    assert run.returncode == 3, run.stdout + run.stderr[-2000:]
    assert f"Cannot write the overviews of {tmp_path / 'out.tif'}:" in run.stdout
    assert "The disk may be full or the file too large for the file system; free some space" in run.stdout
