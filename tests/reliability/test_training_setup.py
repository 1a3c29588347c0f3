"""Training setup refuses what cannot work before the first step (issue 24): a validation pair on other grids,
training areas away from the rasters, an `evaluate --out` that is a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lcgan_qgis.core.errors import InputRasterError
from tests.fixtures.training import tiny_config, write_image, write_landcover
from training.trainer import Trainer


def _data(tmp: Path) -> Path:
    folder = tmp / "data"
    folder.mkdir()
    write_landcover(folder / "lc.tif")
    write_image(folder / "img.tif")
    write_landcover(folder / "val_lc_shifted.tif", origin=(300030.0, 4150000.0))  # one 30 m pixel east
    write_landcover(folder / "val_lc.tif")
    return folder


@pytest.mark.parametrize(("landcover", "refused"), [("val_lc_shifted.tif", True), ("val_lc.tif", False)])
def test_a_validation_pair_on_other_grids_is_refused_before_the_first_step(tmp_path: Path, landcover: str,
                                                                           refused: bool) -> None:
    data = _data(tmp_path)
    config = tiny_config("runtime.max_steps=1", "data.val_image=img.tif", f"data.val_landcover={landcover}")
    if not refused:
        trainer = Trainer(config, data, tmp_path / "run")
        assert trainer.step == 0
        return
    with pytest.raises(InputRasterError, match=r"img\.tif and .*val_lc_shifted\.tif are not on the same grid"):
        Trainer(config, data, tmp_path / "run")
    assert not list((tmp_path / "run").rglob("*.pt*"))  # refused before any checkpoint or step


def test_evaluate_out_that_is_a_file_is_one_line_and_keeps_the_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    target = tmp_path / "report.json"
    target.write_text("mine\n")
    run = subprocess.run([sys.executable, "-m", "training", "evaluate", "--data", str(tmp_path), "--out", str(target)],
                         capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 2, run.stderr
    assert "--out " in run.stderr and "report.json is a file; give a folder" in run.stderr
    assert "Traceback" not in run.stderr
    assert target.read_text() == "mine\n"


def test_training_areas_away_from_the_rasters_stop_the_trainer_with_their_bounds(tmp_path: Path) -> None:
    import json

    data = _data(tmp_path)
    ring = [[500000, 4000000], [501000, 4000000], [501000, 4001000], [500000, 4001000], [500000, 4000000]]
    areas = data / "far.geojson"
    areas.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    config = tiny_config("runtime.max_steps=1", "data.train_areas=far.geojson")
    with pytest.raises(InputRasterError, match=r"far\.geojson: the areas \(500000, 4000000 - 501000, 4001000 .*\) lie "
                                               r"outside every raster \(lc\.tif "):
        Trainer(config, data, tmp_path / "run")
