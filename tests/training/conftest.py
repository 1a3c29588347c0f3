"""Fixtures of the training tests (the helpers they use are in :mod:`tests.fixtures.training`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.training import write_image, write_landcover


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    write_landcover(folder / "lc.tif")
    write_image(folder / "img.tif")
    return folder
