"""``runtime.threads = 0`` on CPU: the cores idle when the run starts, not torch's every core (OpenMP threads that
lose their core to another job stall every barrier: docs/training.md, "make train's slow first steps")."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.fixtures.training import tiny_config
from training.trainer import Trainer, idle_cores


@pytest.fixture
def torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("load", "expected"), [(0.2, "all"), (50.0, 1)])
def test_threads_0_takes_the_cores_idle_at_the_start(data_dir: Path, tmp_path: Path, torch_threads: None,
                                                     monkeypatch: pytest.MonkeyPatch, load: float,
                                                     expected: object) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    Trainer(tiny_config("runtime.threads=0"), data_dir, tmp_path / "run")
    assert torch.get_num_threads() == (cores if expected == "all" else expected) == idle_cores()


def test_threads_given_are_kept(data_dir: Path, tmp_path: Path, torch_threads: None,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (50.0, 50.0, 50.0))
    Trainer(tiny_config("runtime.threads=2"), data_dir, tmp_path / "run")
    assert torch.get_num_threads() == 2
