"""Fixtures for the plugin tests: rasters built with GDAL, clips of the real Zion sample, tiny contract models."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import default_scheme_path
from tests.fixtures.onnx_factory import write_pointwise

from .stand_in import StandInIface

UTM12N = 32612
NLCD = ClassScheme.load(default_scheme_path())
GDAL_TYPES = {np.dtype(np.uint8): gdal.GDT_Byte, np.dtype(np.uint16): gdal.GDT_UInt16,
              np.dtype(np.int16): gdal.GDT_Int16, np.dtype(np.float32): gdal.GDT_Float32}


def write_raster(path: Path, array: np.ndarray, geotransform: Sequence[float] = (300000.0, 30.0, 0.0, 4150000.0,
                 0.0, -30.0), epsg: int | None = UTM12N, nodata: float | None = None) -> Path:
    """Write ``(bands, rows, cols)`` or ``(rows, cols)`` ``array`` as a GeoTIFF and return its path."""
    data = array[None] if array.ndim == 2 else array
    bands, rows, cols = data.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, bands, GDAL_TYPES[data.dtype])
    ds.SetGeoTransform(tuple(geotransform))
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        band = ds.GetRasterBand(b + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band.WriteArray(data[b])
    ds.FlushCache()
    ds = None
    return path


def landcover_array(rows: int, cols: int, seed: int = 0, nodata_corner: bool = True) -> np.ndarray:
    """Blocky NLCD codes (8-pixel patches) with a nodata (255) corner."""
    rng = np.random.default_rng(seed)
    patches = rng.choice(np.array(NLCD.codes, np.uint8), size=(rows // 8 + 1, cols // 8 + 1))
    codes = np.kron(patches, np.ones((8, 8), np.uint8))[:rows, :cols].copy()
    if nodata_corner:
        codes[: rows // 4, : cols // 4] = NLCD.nodata_code
    return codes


def image_array(rows: int, cols: int, seed: int = 0, nodata_corner: bool = True) -> np.ndarray:
    """Landsat-like uint16 R, G, B with a nodata (0) corner."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(6000, 16000, size=(3, rows, cols), dtype=np.uint16)
    if nodata_corner:
        pixels[:, : rows // 4, : cols // 4] = 0
    return pixels


def read(path: Path | str) -> tuple[np.ndarray, gdal.Dataset]:
    ds = gdal.Open(str(path))
    assert ds is not None, f"{path} does not open"
    return ds.ReadAsArray(), ds


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[Direction, Path]:
    """Per-pixel contract models for both directions (NLCD scheme, 64 px tiles, 30 m)."""
    folder = tmp_path_factory.mktemp("models")
    return {d: write_pointwise(folder / f"{d.value}.onnx", d) for d in Direction}


@pytest.fixture(scope="session")
def zion_clips(zion_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """300 x 200 pixel clips of the real Zion land cover and Landsat RGB (on their own grids)."""
    folder = tmp_path_factory.mktemp("zion")
    clips = {}
    for key, name in (("landcover", "nlcd2011.tif"), ("rgb", "landsat8_rgb.tif")):
        clips[key] = folder / f"{key}.tif"
        gdal.Translate(str(clips[key]), str(zion_dir / name), srcWin=[400, 500, 300, 200])
    return clips


@pytest.fixture(scope="session")
def lcgan(processing: object) -> object:
    """Processing with the lcgan provider registered (as the plugin's initProcessing does); yields ``processing``."""
    from qgis.core import QgsApplication

    from lcgan_qgis.plugin.processing_provider import LcganProvider

    registry = QgsApplication.processingRegistry()
    if registry.providerById("lcgan") is None:
        provider = LcganProvider()
        assert registry.addProvider(provider)
        lcgan.provider = provider  # keep the Python object alive for the session
    return processing


@pytest.fixture(autouse=True)
def fresh_dock_settings(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with a dock that remembers nothing (the dock keeps its choices in QgsSettings)."""
    if "qgis_app" not in request.fixturenames and "iface" not in request.fixturenames:
        yield
        return
    from qgis.core import QgsSettings

    QgsSettings().remove("lcgan/dock")
    yield
    QgsSettings().remove("lcgan/dock")


@pytest.fixture
def iface(qgis_new_project: object) -> Iterator[StandInIface]:
    """A stand-in for QGIS's interface (main window only) with a real QgsMapCanvas and QgsMessageBar, over a new
    project (pytest-qgis's ``qgis_new_project``)."""
    from qgis.core import QgsProject
    from qgis.PyQt.QtCore import QCoreApplication

    stand_in = StandInIface()
    yield stand_in
    QgsProject.instance().clear()
    stand_in.window.close()
    stand_in.window.deleteLater()
    QCoreApplication.processEvents()


def recording_feedback() -> object:
    """A QgsProcessingFeedback that keeps the log lines in ``lines`` (qgis is imported once QGIS runs)."""
    from qgis.core import QgsProcessingFeedback

    class Recording(QgsProcessingFeedback):
        def __init__(self) -> None:
            super().__init__()
            self.lines: list[str] = []

        def pushInfo(self, info: str) -> None:
            self.lines.append(info)
            super().pushInfo(info)

    return Recording()


def add_layer(path: Path, name: str) -> object:
    """A valid QgsRasterLayer over ``path``, added to the project."""
    from qgis.core import QgsProject, QgsRasterLayer

    layer = QgsRasterLayer(str(path), name)
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    return layer


def make_dock(iface: object, direction: Direction, layer: object, model: Path, output: Path) -> object:
    """A real LcganDock set to ``direction``, ``layer``, ``model`` and ``output`` (not yet run)."""
    from lcgan_qgis.plugin.gui.dock import LcganDock

    dock = LcganDock(iface)
    dock.set_direction(direction)
    dock.layer_combo.setLayer(layer)
    dock.model_widget.setFilePath(str(model))
    dock.output_widget.setFilePath(str(output))
    return dock


@pytest.fixture(scope="session")
def xyz_tiles(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The source of an XYZ tile layer over a local ``file://`` tile folder (standing in for an online basemap),
    made with gdal2tiles from an 8-bit RGB raster near Zion (zoom 11-13)."""
    from osgeo_utils import gdal2tiles

    folder = tmp_path_factory.mktemp("xyz")
    rgb = image_array(300, 300, seed=5, nodata_corner=False)
    scaled = ((rgb.astype(np.float32) - 6000) / 10000 * 220 + 20).astype(np.uint8)
    source = write_raster(folder / "rgb8.tif", scaled, (320000.0, 30.0, 0, 4130000.0, 0, -30.0))
    gdal2tiles.main(["gdal2tiles.py", "--xyz", "-z", "11-13", "-w", "none", "-q", str(source), str(folder / "tiles")])
    return f"type=xyz&url=file://{folder / 'tiles'}/{{z}}/{{x}}/{{y}}.png&zmin=11&zmax=13"
