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
from tests.fixtures.training import TINY, tiny_config, write_image, write_landcover
from training.config import ConfigError, TrainConfig
from training.errors import ExportError
from training.export import export_checkpoint
from training.trainer import Trainer, TrainingError, load_checkpoint, save_atomic

from .helpers import Case

REPO = Path(__file__).resolve().parents[2]


class CodeOnLoad:
    """Pickles as a call to ``os.system``: loading it without ``weights_only`` would run the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


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


def _edited_checkpoint(tmp: Path, trained: tuple[Path, Path], edit: Any) -> bytes:
    """The trained checkpoint with ``edit(state)`` applied, as bytes."""
    state = torch.load(trained[1] / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    edit(state)
    path = tmp / "edited.pt"
    torch.save(state, path)
    return path.read_bytes()


def _drop_a_key(state: dict[str, Any]) -> None:
    weights = state["nets"]["g_lc2rgb"]
    del weights[next(iter(weights))]


def _other_architecture(state: dict[str, Any]) -> None:
    state["nets"]["g_rgb2lc"] = {key: torch.zeros(*[d + 1 for d in tensor.shape]) if tensor.ndim else tensor
                                 for key, tensor in state["nets"]["g_rgb2lc"].items()}


def _nan_weights(state: dict[str, Any]) -> None:
    tensor = next(t for t in state["nets"]["g_rgb2lc"].values() if t.is_floating_point() and t.ndim == 4)
    tensor.fill_(float("nan"))


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _checkpoint_file(tmp: Path, trained: tuple[Path, Path], edit: Any) -> Path:
    return _write(tmp / "nan.pt", _edited_checkpoint(tmp, trained, edit))


def _export_into(tmp: Path, checkpoint: Path, out: Path) -> Any:
    return lambda: export_checkpoint(checkpoint, out)


def _a_file(path: Path) -> Path:
    path.write_text("not a folder")
    return path


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
    Case("negative loss weight", lambda t, tr: lambda: tiny_config("loss.lambda_cycle_rgb=-10"),
         r"defaults: loss\.lambda_cycle_rgb/.* must be >= 0 \(0 switches a term off\)", extra={"error": ConfigError}),
    Case("negative pool size", lambda t, tr: lambda: tiny_config("loss.pool_size=-1"),
         r"defaults: loss\.pool_size must be >= 0", extra={"error": ConfigError}),
    Case("negative checkpoint interval", lambda t, tr: lambda: tiny_config("runtime.checkpoint_every_s=-60"),
         r"defaults: runtime\.checkpoint_every_s must be >= 0", extra={"error": ConfigError}),
    Case("unknown generator", lambda t, tr: lambda: tiny_config("model.generator=transformer"),
         r"defaults: model\.generator must be one of \('resnet', ", extra={"error": ConfigError}),
    Case("infinite learning rate", lambda t, tr: lambda: tiny_config("optim.lr=inf"),
         r"defaults: optim\.lr must be a finite number, got inf", extra={"error": ConfigError}),
    Case("config file that is not UTF-8", lambda t, tr: lambda: TrainConfig.load(
        _write(t / "latin1.toml", "[optim]\nlr = 1e-4  # café\n".encode("latin-1"))),
        r"latin1\.toml: not UTF-8 text \(byte 0xe9 at position \d+\); a TOML config must be saved as UTF-8",
        extra={"error": ConfigError}),
    Case("a folder as config", lambda t, tr: lambda: TrainConfig.load(t),
         r"Config .* is a folder; give a TOML file", extra={"error": ConfigError}),
    Case("checkpoint with missing keys", lambda t, tr: _resume(t, tr, _edited_checkpoint(t, tr, _drop_a_key)),
         r"Cannot resume from .*last\.pt: its networks or optimizer state do not fit this config .*Use a new run "
         r"folder", extra={"error": TrainingError, "unchanged": "run/checkpoints/last.pt"}),
    Case("checkpoint of another architecture", lambda t, tr: _resume(t, tr, _edited_checkpoint(t, tr,
                                                                                                _other_architecture)),
         r"Cannot resume from .*last\.pt: its networks or optimizer state do not fit this config",
         extra={"error": TrainingError, "unchanged": "run/checkpoints/last.pt"}),
    Case("run folder that is a file", lambda t, tr: (lambda file: lambda: Trainer(
        tiny_config("runtime.max_steps=1"), tr[0], file))(_a_file(t / "run.txt")),
         r"The run folder .*run\.txt is a file; give a folder", extra={"error": TrainingError,
                                                                        "unchanged": "run.txt"}),
    Case("export to an --out that is a file", lambda t, tr: _export_into(
        t, tr[1] / "checkpoints" / "last.pt", _a_file(t / "models.onnx")),
        r"--out .*models\.onnx is a file; give a folder for the two \.onnx files", extra={
            "error": ExportError, "unchanged": "models.onnx"}),
    Case("export of a checkpoint with NaN weights", lambda t, tr: _export_into(
        t, _checkpoint_file(t, tr, _nan_weights), t / "exported"),
        r"nan\.pt: g_rgb2lc has NaN or Inf weights in 1 tensor\(s\) .*the run diverged before this checkpoint; not "
        r"exported", extra={"error": ExportError, "no_file": "exported"}),
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
    if "no_file" in case.extra:  # no .onnx, no temporary file
        assert not list((tmp_path / case.extra["no_file"]).rglob("*"))
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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
def test_ctrl_c_writes_a_whole_checkpoint_and_the_run_resumes(tmp_path: Path, signum: int) -> None:
    """SIGINT (Ctrl-C) or SIGHUP (a closed terminal or ssh session; before: no checkpoint) during training: the step
    finishes, a checkpoint is written atomically (temporary file, then rename), the command exits with 128 + the
    signal (stopped, not finished) naming the step, and the same command resumes from there."""
    data, run = _data(tmp_path), tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(_train_command(data, run), cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(run / "checkpoints" / "last.pt", process)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, err[-3000:]  # the shell's convention: stopped, resumable
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    step = state["step"]
    assert f"signal {int(signum)}: checkpoint written at step {step}; resume with the same command" in err
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
payload = {"step": 2, "config": {}, "nets": {}, "scheme": {}, "radiometry": {},
           "weights": torch.ones(64 * 1024 * 1024)}  # 256 MB: a long write
print("saving", flush=True)
save_atomic(payload, __import__("pathlib").Path(sys.argv[1]))
print("saved", flush=True)
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    """SIGKILL while ``save_atomic`` writes a 256 MB checkpoint: ``last.pt`` is the old checkpoint or the new one,
    whole either way (never a torn file), because the new one is written beside it and renamed when complete."""
    path = tmp_path / "last.pt"
    save_atomic({"step": 1, "config": {}, "nets": {}, "scheme": {}, "radiometry": {}, "weights": torch.zeros(4)},
                path)
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


def test_resume_accepts_another_number_of_data_workers(trained_run: tuple[Path, Path], tmp_path: Path) -> None:
    """``data.num_workers`` changes how fast windows are loaded, not what is trained: a resume with another value
    goes on from the checkpoint's step."""
    data, run = _run_with_checkpoint(tmp_path, trained_run, None)
    trainer = Trainer(tiny_config("runtime.max_steps=2", "data.num_workers=1"), data, run)
    assert trainer.step == 1
    assert trainer.fit() == 2


def test_export_of_a_diverged_checkpoint_is_one_line_on_the_command_line(trained_run: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    checkpoint = _checkpoint_file(tmp_path, trained_run, _nan_weights)
    run = subprocess.run([sys.executable, "-m", "training", "export", "--checkpoint", str(checkpoint), "--out",
                          str(tmp_path / "exported")], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "g_rgb2lc has NaN or Inf weights" in run.stderr and "max_abs_diff" not in run.stdout
    assert not list((tmp_path / "exported").rglob("*")) if (tmp_path / "exported").exists() else True
