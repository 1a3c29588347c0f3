"""The one job every caller runs (``core.run.job.run_translation``) over a file: the resolution policy through the GDAL
reader's warped VRT, the output-path rules, and a model the caller keeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.errors import ContractError, InputRasterError, OutputError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.runtime import Model
from lcgan_qgis.core.rasters.gdal_io import GdalReader, metres_per_unit
from lcgan_qgis.core.rasters.raster import Grid
from lcgan_qgis.core.rasters.sources import check_output_paths
from lcgan_qgis.core.run.job import TranslationRequest, run_translation
from lcgan_qgis.core.run.settings import ModelChoice, Resolution, RunSettings
from tests.fixtures.landcover import imagery, landcover
from tests.fixtures.rasters import crs_wkt, read_tif, write_tif


def _grid(pixel_m: float) -> tuple[float, ...]:
    return (300000.0, pixel_m, 0.0, 4150000.0, 0.0, -pixel_m)


def test_metres_per_unit_of_a_crs() -> None:
    assert metres_per_unit(crs_wkt(32612)) == 1.0
    assert metres_per_unit(crs_wkt(2222)) == pytest.approx(0.3048)  # Arizona East, international feet
    assert metres_per_unit(crs_wkt(4326)) is None and metres_per_unit("") is None and metres_per_unit("junk") is None


def test_the_file_reader_presents_another_grid(tmp_path: Path) -> None:
    codes = landcover(20, 30)
    src = write_tif(tmp_path / "lc.tif", codes, nodata=255, geotransform=_grid(60.0))
    with GdalReader(src) as reader, reader.on_grid(Grid(60, 40, _grid(30.0)), categorical=True) as fine:
        assert (fine.info.width, fine.info.height, fine.info.geotransform) == (60, 40, _grid(30.0))
        assert fine.info.nodata == (255.0,) and fine.info.name == reader.info.name
        from lcgan_qgis.core.rasters.raster import Window

        pixels = fine.read(Window(0, 0, 60, 40), (1,))[0]
    np.testing.assert_array_equal(pixels, np.repeat(np.repeat(codes, 2, axis=0), 2, axis=1))  # nearest: 2x2 copies


def test_a_coarse_file_is_translated_at_the_model_gsd_and_warped_back(rgb_model: Model, tmp_path: Path) -> None:
    src = write_tif(tmp_path / "lc60.tif", landcover(20, 30), nodata=255, geotransform=_grid(60.0))
    lines: list[str] = []
    request = TranslationRequest(output_path=str(tmp_path / "rgb.tif"), input_path=str(src))
    with GdalReader(src) as reader:
        job = run_translation(request, reader, log=lines.append, model=rgb_model)
    assert job.contract.direction is Direction.LANDCOVER_TO_RGB and not job.canceled
    assert any("translating on a 60 x 40 grid at the model's resolution" in line for line in lines), lines
    assert read_tif(tmp_path / "rgb.tif").shape == (3, 20, 30)
    ds = gdal.Open(str(tmp_path / "rgb.tif"))
    assert ds.GetGeoTransform() == _grid(60.0)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".lcgan")]  # scratch folder gone
    assert rgb_model.session is not None  # the caller's model stays open


def test_the_resolution_policy_refuses_what_it_cannot_plan(lc_model: Model, tmp_path: Path) -> None:
    degrees = write_tif(tmp_path / "deg.tif", imagery(), epsg=None)  # (no CRS: the name is kept from before)
    coarse = write_tif(tmp_path / "coarse.tif", imagery(), geotransform=_grid(300.0))
    for src, match in ((degrees, "has no CRS"), (coarse, r"10x per axis")):
        request = TranslationRequest(output_path=str(tmp_path / "o.tif"), input_path=str(src))
        with GdalReader(src) as reader, pytest.raises(InputRasterError, match=match):
            run_translation(request, reader, model=lc_model)
    request = TranslationRequest(
        output_path=str(tmp_path / "o.tif"),
        settings=RunSettings(resolution=Resolution(check_gsd=False)),
    )
    with GdalReader(degrees) as reader:
        run_translation(request, reader, model=lc_model)  # switched off: runs at the raster's own pixel size
    assert read_tif(tmp_path / "o.tif").shape == (1, 40, 50)


def test_the_direction_asked_for_must_be_the_model_s(lc_model: Model, tmp_path: Path) -> None:
    src = write_tif(tmp_path / "lc.tif", landcover(), nodata=255)
    request = TranslationRequest(output_path=str(tmp_path / "o.tif"),
                                 model=ModelChoice(direction=Direction.LANDCOVER_TO_RGB))
    with GdalReader(src) as reader, pytest.raises(ContractError, match="not landcover_to_rgb"):
        run_translation(request, reader, model=lc_model)


def test_output_path_rules(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "in.tif", imagery())
    (tmp_path / "old.tif").write_bytes(b"keep")
    (tmp_path / "dir.tif").mkdir()
    cases = [
        ((None,), {}, "No output file"),
        ((tmp_path / "o.png",), {}, "must be a GeoTIFF"),
        ((src,), {"input_path": src}, "is the input raster itself"),
        ((tmp_path / "o.tif", tmp_path / "o.tif"), {}, "are the same file"),
        ((tmp_path / "dir.tif",), {}, "is a folder"),
        ((tmp_path / "old.tif",), {"overwrite": False}, "exists; remove it"),
        ((tmp_path / "none" / "o.tif",), {}, r"output folder .*none does not exist"),
    ]
    for args, kwargs, match in cases:
        with pytest.raises(OutputError, match=match):
            check_output_paths(*args, **kwargs)
    check_output_paths(tmp_path / "old.tif", tmp_path / "conf.tiff", src)  # overwriting is the default
