"""The rule for an NLCD code a model never saw (NLCD 24 and 12 through both bundled models) and the full legend."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.errors import SchemeError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.scheme import NLCD_LEGEND, ClassScheme, unseen_code_substitutes
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.resources import bundled_model_path, default_scheme_path, resources_dir
from lcgan_qgis.core.run.job import TranslationRequest, run_translation
from lcgan_qgis.core.run.settings import Execution, ModelChoice, RunSettings
from tests.fixtures.rasters import write_tif


def test_the_conus_scheme_has_the_16_classes_with_official_colours() -> None:
    scheme = ClassScheme.load(resources_dir() / "schemes" / "nlcd_conus.json")
    assert scheme.codes == (11, 12, 21, 22, 23, 24, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95)
    colours = {c.code: c.hex for c in scheme.classes}
    assert colours[24] == "#ab0000" and colours[12] == "#d1def8" and colours[42] == "#1c5f2c"
    assert set(scheme.codes) <= set(NLCD_LEGEND)


def test_unseen_nlcd_codes_map_to_the_nearest_class_of_their_group() -> None:
    zion = ClassScheme.load(default_scheme_path())
    assert unseen_code_substitutes(zion, [24, 12, 51, 72, 74, 11, 200]) == {24: 23, 12: 11, 51: 52, 72: 71, 74: 71}
    indices, valid = zion.codes_to_indices(np.array([[24, 12], [23, 255]]))
    assert indices[0, 0] == zion.codes.index(23) and indices[0, 1] == zion.codes.index(11)
    assert valid.tolist() == [[True, True], [True, False]]
    with pytest.raises(SchemeError, match="200"):  # not an NLCD code: still refused, with the list
        zion.codes_to_indices(np.array([200]))
    custom = ClassScheme.from_dict({"name": "seven", "classes": [{"code": 1, "name": "a", "color": "#000000"}]})
    assert unseen_code_substitutes(custom, [24]) == {}  # the rule is NLCD's only


@pytest.mark.parametrize("code", [24, 12])
def test_a_raster_with_an_unseen_nlcd_code_runs_through_both_bundled_models(tmp_path: Path, code: int,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    codes = np.full((64, 64), 42, dtype=np.uint8)
    codes[:32] = code
    codes[60:, :4] = 255
    lc = write_tif(tmp_path / "lc.tif", codes, nodata=255)
    image = tmp_path / "image.tif"
    caplog.set_level(logging.WARNING)
    notes: list[str] = []
    with GdalReader(lc) as reader:
        request = TranslationRequest(
            str(image),
            model=ModelChoice(direction=Direction.LANDCOVER_TO_RGB),
            settings=RunSettings(execution=Execution(threads=1, precision="fp32")),
            input_path=str(lc),
        )
        run_translation(request, reader, log=notes.append)
    assert f"NLCD code {code} is not a class" in caplog.text
    rgb = gdal.Open(str(image)).ReadAsArray()
    assert rgb.shape == (3, 64, 64) and rgb[:, :32].std() > 0
    back = tmp_path / "back.tif"
    with GdalReader(image) as reader:
        request = TranslationRequest(
            str(back),
            model=ModelChoice(direction=Direction.RGB_TO_LANDCOVER),
            settings=RunSettings(execution=Execution(threads=1, precision="fp32")),
            input_path=str(image),
        )
        run_translation(request, reader, log=notes.append)
    predicted = gdal.Open(str(back)).ReadAsArray()
    assert predicted.shape == (64, 64)
    assert set(np.unique(predicted).tolist()) <= set(ClassScheme.load(default_scheme_path()).codes) | {255}
    assert bundled_model_path(Direction.LANDCOVER_TO_RGB).is_file()
