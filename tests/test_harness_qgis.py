"""The QGIS harness works: a real QgsApplication runs real Processing algorithms of QGIS itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal, osr


def _write_small_raster(path: Path) -> None:
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(str(path), 20, 10, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32612)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(np.arange(200, dtype=np.uint8).reshape(10, 20))
    ds = None


def test_native_algorithm_runs(processing, tmp_path: Path) -> None:
    src = tmp_path / "in.tif"
    _write_small_raster(src)
    result = processing.run("native:rasterlayerstatistics", {"INPUT": str(src), "BAND": 1})
    assert result["MIN"] == 0
    assert result["MAX"] == 199
    assert abs(result["MEAN"] - 99.5) < 1e-9


def test_gdal_algorithm_runs_on_real_nlcd(processing, zion_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.tif"
    processing.run(
        "gdal:cliprasterbyextent",
        {"INPUT": str(zion_dir / "nlcd2011.tif"), "PROJWIN": "310000,320000,4130000,4140000 [EPSG:26912]",
         "OUTPUT": str(out)},
    )
    ds = gdal.Open(str(out))
    assert ds is not None and ds.RasterXSize > 0
    values = set(np.unique(ds.GetRasterBand(1).ReadAsArray()).tolist())
    assert values <= {11, 21, 22, 23, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95, 255}
