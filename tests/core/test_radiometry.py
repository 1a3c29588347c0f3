"""The radiometry of a contract (core/model/radiometry.py): values to [-1, 1] and back, its JSON form, the
display bytes of model output."""

from __future__ import annotations

import numpy as np
import pytest

from lcgan_qgis.core.errors import ContractError
from lcgan_qgis.core.model.radiometry import STRETCH_PERCENTILES, Radiometry, to_uint8

LANDSAT = Radiometry("fixed", (7000.0, 7500.0, 6500.0), (15000.0, 16000.0, 14000.0))


def test_low_and_high_map_to_minus_one_and_one_and_back() -> None:
    pixels = np.array([[7000.0, 11000.0, 15000.0, 20000.0], [7500.0, 11750.0, 16000.0, 0.0],
                       [6500.0, 10250.0, 14000.0, 14000.0]], np.float32)
    x = LANDSAT.normalize(pixels)
    np.testing.assert_allclose(x[:, :3], [[-1, 0, 1]] * 3, atol=1e-6)
    assert x[0, 3] == 1.0 and x[1, 3] == -1.0  # clipped beyond the range
    np.testing.assert_allclose(LANDSAT.denormalize(x[:, :3]), pixels[:, :3], rtol=1e-6)
    np.testing.assert_allclose(LANDSAT.normalize(pixels, low=(0, 0, 0), high=(20000, 20000, 20000))[0, 3], 1.0)


def test_the_json_form_round_trips_and_names_what_is_wrong() -> None:
    assert Radiometry.from_dict(LANDSAT.to_dict()) == LANDSAT
    default = Radiometry.from_dict({"low": [0], "high": [255]})
    assert (default.mode, default.percentiles) == ("percentile", STRETCH_PERCENTILES)
    with pytest.raises(ContractError, match=r"m\.onnx: radiometry needs numeric lists 'low' and 'high'"):
        Radiometry.from_dict({"low": ["1"], "high": [2]}, source="m.onnx")
    with pytest.raises(ContractError, match="need finite low < high"):
        Radiometry("fixed", (5.0,), (5.0,))
    with pytest.raises(ContractError, match="radiometry.mode must be one of"):
        Radiometry("stretch", (0.0,), (1.0,))


def test_explain_says_what_each_mode_does() -> None:
    assert "7000-15000, 7500-16000, 6500-14000 per band" in LANDSAT.explain()
    assert LANDSAT.explain("percentile") == "this raster's own 2-98 % range is the model's range"


def test_model_output_becomes_rounded_bytes() -> None:
    np.testing.assert_array_equal(to_uint8(np.array([-2.0, -1.0, 0.0, 0.999, 1.0, 3.0])),
                                  [0, 0, 128, 255, 255, 255])
