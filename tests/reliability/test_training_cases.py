"""Reliability table of the training package: bad datasets and bad checkpoints stop with a message that says what to
do, a checkpoint is never half-written, and a file that tries to run code on load is refused (``weights_only``).

Resuming with a different model shape and a NaN loss are proven in ``tests/training/test_trainer.py`` (see
``docs/reliability.md``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lcgan_qgis.core.errors import InputRasterError, LcganError
from tests.training.conftest import TINY, tiny_config, write_image, write_landcover
from training.config import ConfigError
from training.trainer import Trainer, TrainingError, load_checkpoint, save_atomic

from .helpers import Case

REPO = Path(__file__).resolve().parents[2]


class CodeOnLoad:
    """Pickles as a call to ``os.system``: loading it without ``weights_only`` would run the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data folder and a run folder holding a real one-step checkpoint."""
    root = tmp_path_factory.mktemp("train")
    data = root / "data"
    data.mkdir()
    write_landcover(data / "lc.tif")
    write_image(data / "img.tif")
    Trainer(tiny_config("runtime.max_steps=1"), data, root / "run").fit()
    return data, root / "run"


def _data(tmp: Path, lc_nodata_rows: int = 8, img_nodata_cols: int = 8) -> Path:
    folder = tmp / "data"
    folder.mkdir(exist_ok=True)
    write_landcover(folder / "lc.tif", nodata_rows=lc_nodata_rows)
    write_image(folder / "img.tif", nodata_cols=img_nodata_cols)
    return folder


def _run_with_checkpoint(tmp: Path, trained: tuple[Path, Path], content: bytes | None) -> tuple[Path, Path]:
    """A copy of the trained run whose ``last.pt`` is replaced by ``content`` (None: kept)."""
    data, run = trained
    copy = tmp / "run"
    shutil.copytree(run, copy)
    if content is not None:
        (copy / "checkpoints" / "last.pt").write_bytes(content)
    return data, copy


def _resume(tmp: Path, trained: tuple[Path, Path], content: bytes | None) -> Any:
    """Copy the trained run with ``last.pt`` replaced now; returns the call that resumes it."""
    data, run = _run_with_checkpoint(tmp, trained, content)
    return lambda: Trainer(tiny_config("runtime.max_steps=2"), data, run)


def _code_checkpoint(tmp: Path) -> bytes:
    path = tmp / "evil.pt"
    torch.save({"step": 7, "nets": CodeOnLoad(f"touch {tmp / 'code-ran'}")}, path)
    return path.read_bytes()


def _half(trained: tuple[Path, Path]) -> bytes:
    data = (trained[1] / "checkpoints" / "last.pt").read_bytes()
    return data[: len(data) // 2]


# build(tmp, trained) -> a callable that must raise ``extra["error"]`` with ``message``; ``extra["unchanged"]``
# names files that must still hold the same bytes afterwards (relative to tmp).
TRAINING_CASES = [
    Case("empty dataset (no rasters listed)", lambda t, tr: lambda: tiny_config("data.lc_rasters=[]"),
         r"data\.lc_rasters/image_rasters must be non-empty lists", extra={"error": ConfigError}),
    Case("all-nodata land cover", lambda t, tr: lambda: Trainer(
        tiny_config("runtime.max_steps=1"), _data(t, lc_nodata_rows=96), t / "fresh").fit(),
        r"No 32x32 land-cover window .*lc\.tif", extra={"error": InputRasterError, "no_checkpoint": "fresh"}),
    Case("all-nodata imagery", lambda t, tr: lambda: Trainer(
        tiny_config("runtime.max_steps=1"), _data(t, img_nodata_cols=96), t / "fresh"),
        r"The image rasters .*img\.tif.* hold no valid pixel", extra={"error": InputRasterError,
                                                                       "no_checkpoint": "fresh"}),
    Case("corrupt checkpoint", lambda t, tr: _resume(t, tr, b"\x00not a checkpoint" * 64),
        r"Cannot read checkpoint .*last\.pt: it is not a PyTorch checkpoint \(corrupt, truncated or another format\)\. "
        r"Delete it to start the run over, or restore a copy", extra={"error": TrainingError,
                                                                       "unchanged": "run/checkpoints/last.pt"}),
    Case("truncated checkpoint", lambda t, tr: _resume(t, tr, _half(tr)),
        r"Cannot read checkpoint .*last\.pt: .* Delete it to start the run over, or restore a copy",
        extra={"error": TrainingError, "unchanged": "run/checkpoints/last.pt"}),
    Case("empty checkpoint", lambda t, tr: _resume(t, tr, b""),
        r"Checkpoint .*last\.pt is empty \(0 bytes: an interrupted copy\?\)\. Delete it to start the run over",
        extra={"error": TrainingError, "unchanged": "run/checkpoints/last.pt"}),
    Case("checkpoint that runs code on load", lambda t, tr: _resume(t, tr, _code_checkpoint(t)),
        r"Checkpoint .*last\.pt was refused: it asks to load posix\.system, which is not a tensor or a plain value and "
        r"could run code when loaded\..*never load it with weights_only=False",
        extra={"error": TrainingError, "unchanged": "run/checkpoints/last.pt"}),
]


@pytest.mark.parametrize("case", TRAINING_CASES, ids=[c.id for c in TRAINING_CASES])
def test_training_case(case: Case, trained_run: tuple[Path, Path], tmp_path: Path) -> None:
    action = case.build(tmp_path, trained_run)
    watched = case.extra.get("unchanged")
    before = (tmp_path / watched).read_bytes() if watched else None
    with pytest.raises(case.extra["error"], match=case.message) as info:
        action()
    assert isinstance(info.value, (LcganError, ConfigError))
    if watched:
        assert (tmp_path / watched).read_bytes() == before  # the bad checkpoint was neither used nor overwritten
    if "no_checkpoint" in case.extra:
        assert not list((tmp_path / case.extra["no_checkpoint"]).rglob("*.pt*"))
    assert not (tmp_path / "code-ran").exists()


def test_weights_only_refuses_code_in_any_checkpoint(tmp_path: Path) -> None:
    """``load_checkpoint`` (used by resume and export) never runs what a file asks for."""
    path = tmp_path / "export-me.pt"
    torch.save({"step": 1, "config": CodeOnLoad(f"touch {tmp_path / 'code-ran'}")}, path)
    with pytest.raises(TrainingError, match=r"export-me\.pt was refused: it asks to load posix\.system"):
        load_checkpoint(path)
    assert not (tmp_path / "code-ran").exists()


def _train_command(data: Path, run: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "training", "train", "--data", str(data), "--run-dir", str(run), *TINY,
            "optim.epochs=500", "optim.epochs_decay=0", "runtime.samples_every_epochs=1000",
            "runtime.checkpoint_every_s=0", *overrides]


def _wait_for(path: Path, process: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_ctrl_c_writes_a_whole_checkpoint_and_the_run_resumes(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) during training: the step finishes, a checkpoint is written atomically (temporary file, then
    rename), the command exits with 130 (128 + SIGINT: stopped, not finished) naming the step, and the same command
    resumes from there."""
    data, run = _data(tmp_path), tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_train_command(data, run), cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(run / "checkpoints" / "last.pt", process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGINT, err[-3000:]  # the shell's convention: stopped, resumable
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    step = state["step"]
    assert f"signal 2: checkpoint written at step {step}; resume with the same command" in err
    assert f"trained to step {step}/" in out
    assert not list((run / "checkpoints").glob("*.tmp"))
    resumed = subprocess.run(_train_command(data, run, f"runtime.max_steps={step + 1}"), cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {run / 'checkpoints' / 'last.pt'} at step {step}" in resumed.stderr
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == step + 1


KILL_DURING_SAVE = """
import sys, torch
from training.trainer import save_atomic
payload = {"step": 2, "weights": torch.ones(64 * 1024 * 1024)}  # 256 MB: the write takes a while
print("saving", flush=True)
save_atomic(payload, __import__("pathlib").Path(sys.argv[1]))
print("saved", flush=True)
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    """SIGKILL while ``save_atomic`` writes a 256 MB checkpoint: ``last.pt`` is the old checkpoint or the new one,
    whole either way (never a torn file), because the new one is written beside it and renamed when complete."""
    path = tmp_path / "last.pt"
    save_atomic({"step": 1, "weights": torch.zeros(4)}, path)
    process = subprocess.Popen([sys.executable, "-c", KILL_DURING_SAVE, str(path)], cwd=REPO, stdout=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "saving"
        time.sleep(0.05)
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    state = load_checkpoint(path)
    assert state["step"] in (1, 2)
    if state["step"] == 2:  # the write finished before the kill: the new checkpoint must be whole
        assert state["weights"].shape == (64 * 1024 * 1024,) and float(state["weights"][-1]) == 1.0
    else:
        assert np.array_equal(state["weights"].numpy(), np.zeros(4))
