"""Training, third round (issue 24): foreign checkpoints and out-of-bounds config values get one line; a whole
checkpoint that a kill left under its temporary name is recovered (verified first), a torn one is not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.fixtures.training import tiny_config
from training.checkpoints import REQUIRED_KEYS, load_checkpoint, recover_interrupted, save_atomic
from training.config import ConfigError, TrainConfig
from training.errors import TrainingError
from training.run_log import RunLog

REPO = Path(__file__).resolve().parents[2]


def _state(step: Any = 3, **changes: Any) -> dict[str, Any]:
    state = {"step": step, "config": {}, "nets": {"g": {"w": torch.zeros(2)}}, "scheme": {}, "radiometry": {},
             "format": "lcgan-train-1"}
    state.update(changes)
    return {k: v for k, v in state.items() if v is not None}


FOREIGN = [
    ("missing scheme", _state(scheme=None), r"it lacks \['scheme'\]"),
    ("missing radiometry and nets", _state(radiometry=None, nets=None), r"it lacks \['nets', 'radiometry'\]"),
    ("step 'two'", _state(step="two"), r"step is str 'two'"),
    ("step 2.5", _state(step=2.5), r"step is float 2\.5"),
    ("step True", _state(step=True), r"step is bool True"),
    ("negative step", _state(step=-4), r"step is -4"),
    ("config a list", _state(config=[1, 2]), r"config is list \[1, 2\]"),
    ("nets of tensors", _state(nets={"g": torch.zeros(2)}), r"nets holds something other than state dicts"),
    ("a list, not a dict", [1, 2, 3], r"it lacks \['step', 'config', 'nets', 'scheme', 'radiometry'\]"),
    ("a tensor, not a dict", torch.zeros(3), r"it lacks"),
]


@pytest.mark.parametrize(("content", "message"), [c[1:] for c in FOREIGN], ids=[c[0] for c in FOREIGN])
def test_a_foreign_checkpoint_gets_one_line(tmp_path: Path, content: Any, message: str) -> None:
    path = tmp_path / "foreign.pt"
    torch.save(content, path)
    with pytest.raises(TrainingError, match=rf"Checkpoint {path} is not an lcgan training checkpoint \(.*{message}"):
        load_checkpoint(path)


def test_required_keys_are_what_export_and_resume_read() -> None:
    assert set(REQUIRED_KEYS) == {"step", "config", "nets", "scheme", "radiometry"}


BAD_VALUES = [
    ("runtime.device=cudafoo", r"runtime\.device must be auto, cpu, cuda or cuda:N, not 'cudafoo'"),
    ("runtime.device=cuda:x", r"runtime\.device must be .*not 'cuda:x'"),
    ("runtime.seed=-1", r"runtime\.seed must be in \[0, 2\^32\), not -1"),
    ("runtime.seed=4294967296", r"runtime\.seed must be in \[0, 2\^32\), not 4294967296"),
    ("optim.batch_size=1e20", r"optim\.batch_size must be an integer, got 1e\+20"),
    ("optim.batch_size=100000000000000000000", r"optim\.batch_size/data\.crop_size_px must be at most 4096"),
    ("runtime.threads=100000", r"runtime\.threads/data\.num_workers must be at most 1024 \(got 100000"),
    ("data.num_workers=100000", r"runtime\.threads/data\.num_workers must be at most 1024"),
    ("optim.steps_per_epoch=10000000000000", r"must be at most 1e\+09 steps in all"),
    ("model.ngf=100000", r"model\.ngf/ndf/n_blocks must be at most 4096 filters"),
    ("model.n_blocks=100000", r"and 256 blocks"),
    ("data.crop_size_px=1000000", r"at most 4096 and 16384 \(got 1 and 1000000\)"),
]


@pytest.mark.parametrize(("override", "message"), BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_an_out_of_bounds_config_value_names_the_bound(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(override)


@pytest.mark.parametrize("depth", [5000, 100_000])
def test_a_deeply_nested_toml_is_one_line(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("[model]\nngf = " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ConfigError, match="nested too deeply to be a training config"):
        TrainConfig.load(path)


def test_the_command_line_shows_a_bad_value_without_a_traceback(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "training", "train", "--run-dir", str(tmp_path / "r"),
                          "runtime.device=cudafoo"], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "runtime.device must be auto, cpu, cuda or cuda:N, not 'cudafoo'" in run.stderr


def test_the_command_line_lists_only_commands_that_exist() -> None:
    run = subprocess.run([sys.executable, "-m", "training", "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0 and "bench" not in run.stdout


KILLED_BEFORE_RENAME = """
import os, sys, torch
from pathlib import Path
from lcgan_qgis.core.storage.atomic import AtomicFile
f = AtomicFile(Path(sys.argv[1]))
state = torch.load(sys.argv[2], map_location="cpu", weights_only=True) if sys.argv[2] != "-" else None
if state is not None:
    state["step"] = int(sys.argv[3])
    torch.save(state, f.temp_path)
else:
    f.temp_path.write_bytes(open(sys.argv[4], "rb").read()[: int(sys.argv[3])])
os._exit(0)  # killed between the write and the rename: no cleanup runs
"""


def _killed_write(target: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-c", KILLED_BEFORE_RENAME, str(target), *args], cwd=REPO, check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)


def _run_copy(tmp: Path, trained: tuple[Path, Path]) -> Path:
    run = tmp / "run"
    (run / "checkpoints").mkdir(parents=True)
    return run


def test_a_whole_checkpoint_left_before_its_rename_is_recovered(trained_run: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    """Before: training restarted at step 0 next to a complete checkpoint. Now the next run puts it in place."""
    source = trained_run[1] / "checkpoints" / "last.pt"
    run = _run_copy(tmp_path, trained_run)
    _killed_write(run / "checkpoints" / "last.pt", str(source), "7")
    assert not (run / "checkpoints" / "last.pt").exists()
    RunLog(run, ("a",))
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 7
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"] or all(
        p.name.startswith(".lcgan-run-") for p in (run / "checkpoints").iterdir() if p.name != "last.pt")


def test_a_torn_checkpoint_is_not_recovered_and_an_older_one_does_not_replace_a_newer(
        trained_run: tuple[Path, Path], tmp_path: Path) -> None:
    source = trained_run[1] / "checkpoints" / "last.pt"
    run = _run_copy(tmp_path, trained_run)
    last = run / "checkpoints" / "last.pt"
    state = torch.load(source, map_location="cpu", weights_only=True)
    state["step"] = 5
    save_atomic(state, last)
    _killed_write(last, "-", str(source.stat().st_size // 2), str(source))  # torn: half the bytes
    _killed_write(last, str(source), "3")  # whole, but older than last.pt
    assert recover_interrupted(last) is None
    assert load_checkpoint(last)["step"] == 5


def test_a_legacy_last_pt_tmp_is_recovered_when_whole(trained_run: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    source = trained_run[1] / "checkpoints" / "last.pt"
    run = _run_copy(tmp_path, trained_run)
    state = torch.load(source, map_location="cpu", weights_only=True)
    state["step"] = 9
    torch.save(state, run / "checkpoints" / "last.pt.tmp")
    time.sleep(0.01)
    assert recover_interrupted(run / "checkpoints" / "last.pt") == run / "checkpoints" / "last.pt.tmp"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 9
    (run / "checkpoints" / "last.pt.tmp").write_bytes(b"torn")
    assert recover_interrupted(run / "checkpoints" / "last.pt") is None
