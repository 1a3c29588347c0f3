"""The models the plugin ships (resources/models): each loads under the contract it claims, its fidelity record was
measured on the files it sits beside, and the terrain-aware generator really reads the terrain on real Zion ground."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.precision import int8_sibling, read_record
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.resources import bundled_model_path, bundled_terrain_model_path
from lcgan_qgis.core.run.job import TranslationRequest, run_translation
from lcgan_qgis.core.run.settings import Execution, ModelChoice, RunSettings, Terrain
from tests.fixtures.rasters import read_tif

BUNDLED = {
    "rgb_to_landcover": (lambda: bundled_model_path(Direction.RGB_TO_LANDCOVER), Direction.RGB_TO_LANDCOVER, False),
    "landcover_to_rgb": (lambda: bundled_model_path(Direction.LANDCOVER_TO_RGB), Direction.LANDCOVER_TO_RGB, False),
    "landcover_to_rgb_terrain": (bundled_terrain_model_path, Direction.LANDCOVER_TO_RGB, True),
}


def _bundled(name: str) -> Path:
    path = BUNDLED[name][0]()
    if not path.is_file():
        pytest.skip(f"no bundled {name} model at {path}")
    return path


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_a_bundled_model_loads_with_its_contract_and_a_current_fidelity_record(name: str) -> None:
    path = _bundled(name)
    _, direction, terrain = BUNDLED[name]
    with load_model(path, "cpu", threads=1, precision="fp32", backend="onnxruntime") as model:
        contract = model.contract
    assert contract.direction is direction and (contract.terrain is not None) is terrain
    assert (contract.tile_size_px, contract.overlap_px) == (256, 64)  # the export settings resources/models/README.md
    record, note = read_record(path)
    assert note is None and record is not None, note  # measured on these very files (digests agree)
    assert int8_sibling(path).is_file() and set(record.digests) == {path.name, int8_sibling(path).name}


def test_the_bundled_terrain_model_paints_the_relief_of_real_ground(zion_dir: Path, tmp_path: Path) -> None:
    """A 400 px crop of Zion's NLCD with SRTM, then with the same DEM flattened to 1,500 m: the canyons change the
    picture (measured: 4.8 DN on average, 60 DN at the 99th percentile), the flat DEM keeps the map's colours
    (band means within 2 DN)."""
    model = _bundled("landcover_to_rgb_terrain")
    dem = zion_dir / "srtm_on_landsat_grid.tif"
    if not dem.is_file():
        pytest.skip(f"the Zion SRTM raster is absent ({dem})")
    crop = tmp_path / "lc.tif"
    gdal.Translate(str(crop), str(zion_dir / "nlcd2011.tif"), srcWin=[300, 300, 400, 400])
    flat = tmp_path / "flat_dem.tif"
    source = gdal.Open(str(dem))
    copy = gdal.GetDriverByName("GTiff").CreateCopy(str(flat), source)
    band = copy.GetRasterBand(1)
    band.WriteArray(np.full((source.RasterYSize, source.RasterXSize), 1500, np.int16))
    copy = source = None
    outputs = {}
    for label, elevation in (("srtm", dem), ("flat", flat)):
        out = tmp_path / f"rgb_{label}.tif"
        with GdalReader(crop) as reader:
            request = TranslationRequest(
                str(out),
                model=ModelChoice(path=str(model)),
                settings=RunSettings(
                    execution=Execution(precision="fp32", backend="onnxruntime", threads=1),
                    terrain=Terrain(elevation_path=str(elevation)),
                ),
            )
            run_translation(request, reader)
        outputs[label] = read_tif(out).astype(np.int16)
    assert outputs["srtm"].shape == (3, 400, 400) and outputs["srtm"].std() > 20
    difference = np.abs(outputs["srtm"] - outputs["flat"])
    assert difference.mean() > 2.0 and np.percentile(difference, 99) > 15
    assert np.abs(outputs["srtm"].mean(axis=(1, 2)) - outputs["flat"].mean(axis=(1, 2))).max() < 10
