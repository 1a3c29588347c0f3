"""A full disk loses nothing: fine-tuning and training stop with one line naming the folder, the last good
checkpoint stays whole, and the same command resumes once there is room.

Two real ways to make writes fail: a small tmpfs mounted for the test (ENOSPC; needs the right to mount, skipped
elsewhere) and a file-size limit (``RLIMIT_FSIZE``) in a child process that ignores SIGXFSZ, where ``write()`` fails
with EFBIG (POSIX only).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.training import tiny_config
from tests.training.test_finetune import _settings, region  # noqa: F401  (region: the module's fixture)
from training.checkpoints import load_checkpoint
from training.errors import TrainingError
from training.finetune.run import FineTune
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
DISK_MB = 160  # room for one fine-tuning checkpoint (~70 MB) and its outputs, not for a second one beside it


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of :data:`DISK_MB` MB mounted for the test (skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs Linux's mount")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Take all but ``leave`` bytes of ``disk``'s free space with one file; returns it."""
    filler = disk / "filler"
    size = shutil.disk_usage(disk).free - leave
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(size, 1))
    return filler


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def partial_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.lcgan-partial*"))


def load_checkpoint_step(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def one_line_naming(exc: BaseException, folder: Path) -> bool:
    return "\n" not in str(exc) and str(folder) in str(exc)


def test_finetune_on_a_full_disk_keeps_the_checkpoint_and_resumes(region: dict[str, Path],  # noqa: F811
                                                                   small_disk: Path) -> None:
    out = small_disk / "run"
    ft = FineTune(_settings(region, out, steps=1))
    assert ft.train() == 1
    ckpt = out / "checkpoints" / "last.pt"
    before = digest(ckpt)
    filler = fill(small_disk, ckpt.stat().st_size // 2)  # the next checkpoint cannot be written beside this one
    ft = FineTune(_settings(region, out, steps=2))
    with pytest.raises(TrainingError) as caught:
        ft.train()
    print(caught.value)
    assert one_line_naming(caught.value, ckpt.parent), caught.value
    assert digest(ckpt) == before and load_checkpoint_step(ckpt) == 1
    assert partial_files(out) == []
    filler.unlink()
    ft = FineTune(_settings(region, out, steps=2))
    assert ft.step == 1 and ft.train() == 2


def test_finetune_outputs_on_a_full_disk_end_with_one_line(region: dict[str, Path],  # noqa: F811
                                                           small_disk: Path) -> None:
    """Room for the checkpoint but not for the model folder: one line naming the folder, the checkpoint kept."""
    from training.finetune.outputs import write_outputs

    out = small_disk / "run"
    ft = FineTune(_settings(region, out, steps=1))
    ft.train()
    ckpt = out / "checkpoints" / "last.pt"
    fill(small_disk, 256 * 1024)
    with pytest.raises(TrainingError) as caught:
        write_outputs(ft, 0.0)
    print(caught.value)
    assert one_line_naming(caught.value, out), caught.value
    assert load_checkpoint_step(ckpt) == 1 and partial_files(out) == []


@pytest.mark.parametrize("room", ["none", "half a checkpoint"])
def test_training_on_a_full_disk_keeps_the_checkpoint_and_resumes(data_dir: Path, small_disk: Path,
                                                                  room: str) -> None:
    """No room at all (the losses file fails first) or room for the losses but not for the next checkpoint."""
    run = small_disk / "run"
    Trainer(tiny_config("runtime.max_steps=2"), data_dir, run).fit()
    ckpt = run / "checkpoints" / "last.pt"
    before = digest(ckpt)
    filler = fill(small_disk, 0 if room == "none" else ckpt.stat().st_size // 2)
    with pytest.raises(TrainingError) as caught:
        Trainer(tiny_config("runtime.max_steps=4"), data_dir, run).fit()
    print(caught.value)
    assert one_line_naming(caught.value, run), caught.value
    assert digest(ckpt) == before and load_checkpoint(ckpt)["step"] == 2
    assert partial_files(run) == []
    filler.unlink()
    trainer = Trainer(tiny_config("runtime.max_steps=4"), data_dir, run)
    assert trainer.step == 2 and trainer.fit() == 4


def _limited(limit: int) -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_finetune_child_past_its_file_size_limit_keeps_the_checkpoint(region: dict[str, Path],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    """The command-line run (what the plugin starts) under a file-size limit smaller than a checkpoint: exit
    status 2, its last line the one-line error naming the folder; the earlier checkpoint whole; resumes without it."""
    out = tmp_path / "run"
    s = _settings(region, out, steps=1)
    args = [sys.executable, "-m", "training.finetune", "--imagery", *s.imagery, "--landcover", *s.landcover,
            "--scheme", s.scheme, "--out", str(out), "--crop", str(s.crop), "--batch", str(s.batch),
            "--threads", "1", "--no-int8"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.run([*args, "--steps", "1"], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr[-2000:]
    ckpt = out / "checkpoints" / "last.pt"
    before = digest(ckpt)
    limit = ckpt.stat().st_size // 2
    second = subprocess.run([*args, "--steps", "2"], cwd=REPO, env=env, capture_output=True, text=True, check=False,
                            preexec_fn=lambda: _limited(limit))
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 2 and " ERROR " in lines[-1], second.stderr[-2000:]
    assert str(ckpt.parent) in lines[-1] and "File too large" in lines[-1] and "Traceback" not in second.stderr
    assert digest(ckpt) == before and partial_files(out) == []
    third = subprocess.run([*args, "--steps", "2"], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert third.returncode == 0 and "resumed from" in third.stderr and (out / "report.json").is_file()
    assert load_checkpoint_step(ckpt) == 2
