"""Fixtures of the reliability catalogue: the plugin tests' tiny models, Processing with the lcgan provider and the
stand-in iface, reused as they are (imported here so that pytest registers them for this folder too), and a real
one-step training run for the training cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.plugin import iface, lcgan, models  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data folder and a run folder holding a real one-step checkpoint (training's imports load torch: here,
    not when the folder's other tests start)."""
    from tests.fixtures.training import tiny_config, write_image, write_landcover
    from training.trainer import Trainer

    root = tmp_path_factory.mktemp("train")
    data = root / "data"
    data.mkdir()
    write_landcover(data / "lc.tif")
    write_image(data / "img.tif")
    Trainer(tiny_config("runtime.max_steps=1"), data, root / "run").fit()
    return data, root / "run"
