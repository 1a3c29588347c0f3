"""The provider reader returns exactly what GDAL reads, for files, VRTs and resampled grids, from a worker thread."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.rasters.raster import Grid, RasterReader, Window
from lcgan_qgis.plugin.qgis_reader import ProviderReader, metres_per_unit
from tests.fixtures.plugin import image_array, write_raster


def _layer(path: Path, name: str = "layer"):
    from qgis.core import QgsRasterLayer

    layer = QgsRasterLayer(str(path), name, "gdal")
    assert layer.isValid(), path
    return layer


@pytest.mark.parametrize("key", ["landcover", "rgb"])
def test_windows_match_gdal_on_real_zion(qgis_app, zion_dir: Path, key: str) -> None:
    path = zion_dir / ("nlcd2011.tif" if key == "landcover" else "landsat8_rgb.tif")
    reader = ProviderReader.from_layer(_layer(path, "Zion"))
    assert isinstance(reader, RasterReader)
    ds = gdal.Open(str(path))
    info = reader.info
    assert (info.name, info.width, info.height, info.band_count) == ("Zion", ds.RasterXSize, ds.RasterYSize,
                                                                      ds.RasterCount)
    assert info.dtype == ("uint8" if key == "landcover" else "uint16")
    assert info.nodata == tuple(ds.GetRasterBand(b + 1).GetNoDataValue() for b in range(ds.RasterCount))
    np.testing.assert_allclose(info.geotransform, ds.GetGeoTransform(), rtol=1e-12)
    rng = np.random.default_rng(1)
    bands = list(range(1, info.band_count + 1))
    for _ in range(25):
        w, h = (int(v) for v in rng.integers(1, 200, 2))
        col, row = int(rng.integers(0, info.width - w + 1)), int(rng.integers(0, info.height - h + 1))
        expected = ds.ReadAsArray(col, row, w, h).reshape(len(bands), h, w)
        np.testing.assert_array_equal(reader.read(Window(col, row, w, h), bands), expected)
    corner = Window(info.width - 3, info.height - 2, 3, 2)
    np.testing.assert_array_equal(reader.read(corner, bands[::-1]),
                                  ds.ReadAsArray(corner.col_off, corner.row_off, 3, 2).reshape(-1, 2, 3)[::-1])


def test_reads_from_a_worker_thread_after_the_layer_is_gone(qgis_app, tmp_path: Path) -> None:
    pixels = image_array(50, 70)
    path = write_raster(tmp_path / "img.tif", pixels, nodata=0)
    layer = _layer(path, "img")
    reader = ProviderReader.from_layer(layer)
    del layer
    out: dict[str, np.ndarray] = {}
    thread = threading.Thread(target=lambda: out.setdefault("a", reader.read(Window(5, 6, 40, 30), [3, 1])))
    thread.start()
    thread.join(30)
    np.testing.assert_array_equal(out["a"], pixels[[2, 0], 6:36, 5:45])


def test_vrt_source_works(qgis_app, tmp_path: Path) -> None:
    pixels = image_array(40, 30, seed=3)
    src = write_raster(tmp_path / "img.tif", pixels)
    vrt = tmp_path / "img.vrt"
    gdal.BuildVRT(str(vrt), [str(src)], bandList=[3, 2, 1])
    reader = ProviderReader.from_layer(_layer(vrt, "vrt"))
    np.testing.assert_array_equal(reader.read(Window(0, 0, 30, 40), [1, 2, 3]), pixels[::-1])


def test_on_grid_resamples_codes_by_nearest_neighbour(qgis_app, zion_dir: Path) -> None:
    reader = ProviderReader.from_layer(_layer(zion_dir / "nlcd2011.tif", "nlcd"))
    info = reader.info
    gt = info.geotransform
    grid = Grid(info.width // 3, info.height // 3, (gt[0], gt[1] * 3, 0.0, gt[3], 0.0, gt[5] * 3))
    coarse = reader.on_grid(grid, categorical=True)
    assert (coarse.info.width, coarse.info.height) == (grid.width, grid.height)
    codes = coarse.read(Window(0, 0, grid.width, grid.height), [1])
    full = reader.read(Window(0, 0, info.width, info.height), [1])
    assert set(np.unique(codes)) <= set(np.unique(full))  # no averaged, invented codes
    assert np.mean(codes[0] == full[0, 1 : grid.height * 3 : 3, 1 : grid.width * 3 : 3]) > 0.9


def test_unsupported_data_type_is_named(qgis_app, tmp_path: Path) -> None:
    path = tmp_path / "complex.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 4, 4, 1, gdal.GDT_CInt16)
    ds.SetGeoTransform((0, 1, 0, 0, 0, -1))
    ds = None
    with pytest.raises(InputRasterError, match=r"Layer 'complex' band 1 has data type CInt16"):
        ProviderReader.from_layer(_layer(path, "complex"))


def test_band_out_of_range_is_named(qgis_app, tmp_path: Path) -> None:
    reader = ProviderReader.from_layer(_layer(write_raster(tmp_path / "a.tif", image_array(8, 8)), "three"))
    with pytest.raises(InputRasterError, match=r"Layer 'three' has 3 band\(s\); band 4 does not exist"):
        reader.read(Window(0, 0, 2, 2), [1, 4])


def test_metres_per_unit(qgis_app) -> None:
    from qgis.core import QgsCoordinateReferenceSystem

    assert metres_per_unit(QgsCoordinateReferenceSystem("EPSG:32612")) == 1.0
    assert metres_per_unit(QgsCoordinateReferenceSystem("EPSG:4326")) is None
    assert metres_per_unit(QgsCoordinateReferenceSystem("EPSG:2264")) == pytest.approx(0.3048, rel=1e-5)  # US ft
    assert metres_per_unit(QgsCoordinateReferenceSystem()) is None
