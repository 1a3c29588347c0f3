"""Which model file a run uses (core/run/models.py) and its contract, read once per file version."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lcgan_qgis.core.errors import ModelFileError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.run.models import read_contract, resolve_model_path
from lcgan_qgis.core.run.settings import ModelChoice
from tests.fixtures.onnx_factory import write_pointwise


def test_a_given_file_wins_and_without_one_the_bundled_model_of_the_direction_runs(tmp_path: Path) -> None:
    assert resolve_model_path("a.onnx", Direction.LANDCOVER_TO_RGB) == Path("a.onnx")
    assert ModelChoice("a.onnx").resolve() == Path("a.onnx")
    bundled = resolve_model_path(None, Direction.RGB_TO_LANDCOVER)
    assert bundled.name == "rgb_to_landcover.onnx" and bundled.is_file()
    with pytest.raises(ModelFileError, match="No model file was given; choose a model file"):
        resolve_model_path(None, None)


def test_the_contract_is_read_once_per_file_version(tmp_path: Path) -> None:
    path = write_pointwise(tmp_path / "m.onnx", "landcover_to_rgb")
    first = read_contract(path)
    assert read_contract(str(path)) is first  # cached
    write_pointwise(path, "rgb_to_landcover")
    os.utime(path, ns=(0, 10**9))  # another version of the file
    assert read_contract(path).direction is Direction.RGB_TO_LANDCOVER
    with pytest.raises(ModelFileError, match="Model file not found"):
        read_contract(tmp_path / "missing.onnx")
