"""Fixtures of the scale-out tests: one real Dask LocalCluster (2 worker processes, 1 thread each) per session,
small rasters and tiny real ONNX models (per-pixel and convolutional, with InstanceNorm so tiling matters)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """A real local cluster of two worker processes (spawned, like any Dask deployment's workers)."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local:
        yield local


@pytest.fixture(scope="session")
def client(cluster: LocalCluster) -> Iterator[Client]:
    """A client of :func:`cluster`, for looking into the workers (the jobs make their own)."""
    with Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.fixtures.conv_factory import write_conv

    folder = tmp_path_factory.mktemp("models")
    return {
        "rgb_to_landcover": write_conv(folder / "rgb2lc.onnx", "rgb_to_landcover"),
        "landcover_to_rgb": write_conv(folder / "lc2rgb.onnx", "landcover_to_rgb", noise_channels=2),
    }
