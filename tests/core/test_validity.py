"""The one image-validity rule (``core/rasters/validity.py``): a pixel with any band at nodata, or not finite, has no
data."""

from __future__ import annotations

import numpy as np
import pytest

from lcgan_qgis.core.rasters.validity import image_valid


def test_any_band_at_its_nodata_value_makes_the_pixel_nodata() -> None:
    pixels = np.full((3, 2, 3), 100, np.uint16)
    pixels[:, 0, 0] = 0  # every band at nodata
    pixels[1, 0, 1] = 0  # one band at nodata
    pixels[2, 1, 2] = 7  # band 3's own nodata value
    valid = image_valid(pixels, (0, 0, 7))
    assert valid.tolist() == [[False, False, True], [True, True, False]]
    assert image_valid(pixels, 0).tolist() == [[False, False, True], [True, True, True]]  # one value for all bands
    assert image_valid(pixels, (None, None, None)).all() and image_valid(pixels, None).all()


def test_non_finite_values_are_nodata_in_any_band() -> None:
    pixels = np.ones((3, 1, 4), np.float32)
    pixels[0, 0, 1], pixels[2, 0, 2], pixels[1, 0, 3] = np.nan, np.inf, -np.inf
    assert image_valid(pixels, (float("nan"),) * 3).tolist() == [[True, False, False, False]]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(bands, rows, cols\)"):
        image_valid(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="2 nodata value"):
        image_valid(np.zeros((3, 4, 4)), (0, 0))
