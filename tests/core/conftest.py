"""Fixtures of the core tests: per-pixel contract models (tiling-invariant, so tiled output equals untiled)."""

from __future__ import annotations

import pytest

from lcgan_qgis.core.model.runtime import Model, load_model
from tests.fixtures.onnx_factory import write_pointwise


@pytest.fixture(scope="module")
def lc_model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """imagery -> land cover, per pixel (1x1 conv + softmax)."""
    return load_model(write_pointwise(tmp_path_factory.mktemp("m") / "rgb2lc.onnx", "rgb_to_landcover"), "cpu")


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """land cover -> imagery, per pixel (1x1 conv + tanh)."""
    return load_model(write_pointwise(tmp_path_factory.mktemp("m") / "lc2rgb.onnx", "landcover_to_rgb"), "cpu")
