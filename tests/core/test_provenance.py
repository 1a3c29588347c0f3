"""Provenance tags (core/rasters/provenance.py): every output says it is AI-generated, by which model, from which
input, when; synthetic imagery is marked as such, with its seed when one was chosen."""

from __future__ import annotations

import datetime as dt

from lcgan_qgis.core.rasters.provenance import (
    AI_GENERATED,
    ELEVATION,
    SEED,
    SOURCE_TYPE,
    TRAINED_ALGORITHMIC_MEDIA,
    provenance_tags,
    summary,
)
from tests.fixtures.onnx_factory import default_contract

WHEN = dt.datetime(2026, 12, 6, 2, 0, 0, tzinfo=dt.UTC)


def test_synthetic_imagery_is_marked_with_its_model_input_dem_and_seed() -> None:
    tags = provenance_tags(default_contract("landcover_to_rgb"), "/m/lc2rgb.onnx", "nlcd.tif", WHEN, "dem.tif", 7)
    assert tags[AI_GENERATED] == "YES" and tags[SOURCE_TYPE] == TRAINED_ALGORITHMIC_MEDIA
    assert (tags["LCGAN_MODEL"], tags["LCGAN_INPUT"], tags[ELEVATION], tags[SEED]) == (
        "lc2rgb.onnx", "nlcd.tif", "dem.tif", "7")
    assert tags["TIFFTAG_DATETIME"] == "2026:12:06 02:00:00" and tags["LCGAN_CREATED"] == "2026-12-06T02:00:00+00:00"
    assert tags["TIFFTAG_IMAGEDESCRIPTION"] == summary(tags)
    text = summary(tags)
    assert "elevation 'dem.tif'" in text and text.endswith("It is not a real satellite or aerial scene.")


def test_land_cover_carries_no_seed_and_no_synthetic_image_mark() -> None:
    tags = provenance_tags(default_contract("rgb_to_landcover"), "m.onnx", "scene.tif", WHEN, seed=7)
    assert SEED not in tags and SOURCE_TYPE not in tags and ELEVATION not in tags
    assert summary(tags).startswith("AI-generated predicted land cover: made by the lcgan model m.onnx")
    unseeded = provenance_tags(default_contract("landcover_to_rgb"), "m.onnx", "lc.tif", WHEN)
    assert SEED not in unseeded  # seed 0, the default: the model's own texture
