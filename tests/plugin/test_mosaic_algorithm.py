"""``lcgan:translate_mosaic`` in a real QGIS against a real Dask scheduler (a LocalCluster of 2 worker processes):
the VRT's pixels are the single-process algorithm's, it runs in a background task while the main thread keeps
processing events, the VRT is loaded into the project styled, and bad parameters give clear messages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from distributed import LocalCluster

from lcgan_qgis.core.model.contract import Direction
from tests.fixtures.plugin import NLCD, image_array, read, write_raster

MOSAIC, RGB2LC = "lcgan:translate_mosaic", "lcgan:rgb_to_landcover"


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def test_the_mosaic_equals_the_single_process_algorithm_and_runs_in_the_background(
        lcgan, models, scheduler: str, tmp_path: Path) -> None:
    from qgis.core import (
        QgsApplication,
        QgsProcessingAlgRunnerTask,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProject,
        QgsTask,
    )
    from qgis.PyQt.QtCore import QCoreApplication

    img = write_raster(tmp_path / "scene.tif", image_array(300, 1100), nodata=0)  # 3 windows of 512 px per row
    single = lcgan.run(RGB2LC, {"INPUT": str(img), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]),
                                "OUTPUT": str(tmp_path / "single.tif"), "DEVICE": 1})["OUTPUT"]
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(MOSAIC)
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    context.setProject(QgsProject.instance())
    params = {"INPUT": str(img), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]), "SCHEDULER": scheduler,
              "TILE_PX": 128, "DEVICE": 1, "OUTPUT_FOLDER": str(tmp_path / "mosaic")}
    task = QgsProcessingAlgRunnerTask(algorithm, params, context, feedback)
    outcome: dict[str, object] = {}
    task.executed.connect(lambda ok, results: outcome.update(ok=ok, results=results))
    QgsApplication.taskManager().addTask(task)
    spins, deadline = 0, time.monotonic() + 120
    while "ok" not in outcome and time.monotonic() < deadline:
        QCoreApplication.processEvents()  # the main thread stays free while the cluster works
        spins += 1
        time.sleep(0.01)
    assert outcome.get("ok") is True, feedback.textLog()
    assert spins > 10 and task.status() == QgsTask.TaskStatus.Complete
    vrt = outcome["results"]["OUTPUT"]
    assert vrt == str(tmp_path / "mosaic" / "mosaic.vrt") and context.willLoadLayerOnCompletion(vrt)
    # super-tile edges sit on window starts: 128 px asked, one tile per window along the row
    assert outcome["results"]["TILES"] == 3 and feedback.progress() == pytest.approx(100.0)
    np.testing.assert_array_equal(read(vrt)[0], read(single)[0])
    assert "3 super-tiles (3 run, 0 already done)" in feedback.textLog()


def test_the_vrt_is_loaded_styled_into_the_project(lcgan, models, scheduler: str, tmp_path: Path) -> None:
    from qgis.core import QgsPalettedRasterRenderer, QgsProject

    img = write_raster(tmp_path / "scene.tif", image_array(100, 140), nodata=0)
    try:
        lcgan.runAndLoadResults(MOSAIC, {"INPUT": str(img), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]),
                                         "SCHEDULER": scheduler, "TILE_PX": 64, "DEVICE": 1,
                                         "OUTPUT_FOLDER": str(tmp_path / "out")})
        layers = [node.layer() for node in QgsProject.instance().layerTreeRoot().findLayers()]
        assert [layer.source() for layer in layers] == [str(tmp_path / "out" / "mosaic.vrt")]
        assert layers[0].name() == "scene -> out"
        assert isinstance(layers[0].renderer(), QgsPalettedRasterRenderer)
        assert {c.label for c in layers[0].renderer().classes()} == {f"{c.code} {c.name}" for c in NLCD.classes}
    finally:
        QgsProject.instance().clear()


def test_bad_parameters_are_clear(lcgan, models, tmp_path: Path) -> None:
    from qgis.core import QgsProcessingException

    img = write_raster(tmp_path / "scene.tif", image_array(40, 40), nodata=0)
    base = {"INPUT": str(img), "MODEL": str(models[Direction.RGB_TO_LANDCOVER]), "TILE_PX": 64,
            "OUTPUT_FOLDER": str(tmp_path / "out")}
    with pytest.raises(QgsProcessingException, match="No Dask scheduler answered at tcp://127.0.0.1:9"):
        lcgan.run(MOSAIC, {**base, "SCHEDULER": "tcp://127.0.0.1:9"})
    with pytest.raises(QgsProcessingException, match="address of a running Dask scheduler"):
        lcgan.run(MOSAIC, {**base, "SCHEDULER": "  "})
    from qgis.core import QgsProject, QgsRasterLayer

    uri = (f"?crs=EPSG:32612&extent=300000,4148800,301200,4150000&width=40&height=40&formula=%22s@1%22&s:uri={img}"
           "&s:provider=gdal")
    computed = QgsRasterLayer(uri, "computed scene", "virtualraster")
    assert computed.isValid()
    QgsProject.instance().addMapLayer(computed)
    try:  # the workers open the input by path: a layer with no GDAL file behind it is one line naming it
        with pytest.raises(QgsProcessingException, match="Input layer 'computed scene' is not a file GDAL can read"):
            lcgan.run(MOSAIC, {**base, "INPUT": computed.id(), "SCHEDULER": "tcp://127.0.0.1:9"})
    finally:
        QgsProject.instance().removeMapLayer(computed.id())
