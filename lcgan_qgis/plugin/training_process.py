"""Fine-tuning from QGIS: ``python -m training.finetune`` in a child process the plugin starts and watches.

QGIS's own process never imports torch. The child runs with the first interpreter that has torch and the
``training`` package (:func:`training_root`): ``$LCGAN_TRAINING_PYTHON``; the checkout's ``.venv``
(development); QGIS's own Python with the installer's PyTorch folder (``<profile>/lcgan/torch/py3XX``, which also
holds the modules fine-tuning imports that QGIS's Python lacks: onnx, rasterio...) and package folder on
``PYTHONPATH`` (:func:`lcgan_qgis.installer.companions.child_paths`). The plugin zip ships the training modules
fine-tuning needs in ``lcgan_qgis/_training`` (no package: nothing QGIS loads imports from there), with the model
tooling the zip leaves out of the plugin package (``_training/lcgan_qgis/tooling``), which the child adds to its
``lcgan_qgis`` package.

The child prints one ``LCGAN_PROGRESS {json}`` line per step (step, fraction of the budget, losses, the latest
validation accuracy); a cancel sends SIGTERM (CTRL_BREAK on Windows), which the run answers by writing its
checkpoint, so the same output folder resumes later. :class:`FineTuneTask` is the same runner as a ``QgsTask`` for
the dock.

Models finished this way go to the user-models folder (:func:`user_models_dir`, ``<profile>/lcgan/models/<name>``
by default), one folder per model laid out like ``resources/models``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsMessageLog, QgsTask

from ..core.errors import LcganError

LOG = logging.getLogger(__name__)
PROGRESS_PREFIX = "LCGAN_PROGRESS "
PYTHON_ENV = "LCGAN_TRAINING_PYTHON"
ROOT_ENV = "LCGAN_TRAINING_ROOT"  # the folder holding the ``training`` package (default: the checkout)
SHIPPED = "_training"  # the zip's copy of the training modules, in the plugin folder (tools/make_zip.py)
#: The child's first lines: the shipped tooling (argument 1, may be empty) joins the ``lcgan_qgis`` package, then the
#: module (argument 2) runs as ``python -m`` runs it.
BOOT = ("import runpy, sys; import lcgan_qgis; lcgan_qgis.__path__.extend(p for p in [sys.argv.pop(1)] if p); "
        "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)")
#: The interpreter check: torch and what the run imports (rasterio, shapely, onnx, the tooling, and onnxruntime's
#: quantizer for the int8 copies, which needs ml_dtypes), with the same package set-up.
PROBE = ("import sys; import lcgan_qgis; lcgan_qgis.__path__.extend([a for a in sys.argv[1:] if a]); "
         "import torch, training.finetune.cli, training.finetune.outputs, onnxruntime.quantization")
STOP_WAIT_S = 120.0  # how long a cancelled run may take to write its checkpoint before it is killed


class TrainingUnavailableError(LcganError):
    """No Python with torch and lcgan's training package was found."""


def user_models_dir() -> Path:
    """Where fine-tuned models go and the plugin looks for user models: ``<lcgan home>/models``."""
    from ..installer.folders import lcgan_home

    return lcgan_home() / "models"


def plugin_parent() -> Path:
    """The folder holding the ``lcgan_qgis`` package (the checkout, or QGIS's plugins folder)."""
    return Path(__file__).resolve().parents[2]


def training_root() -> Path:
    """The folder holding lcgan's ``training`` package: ``$LCGAN_TRAINING_ROOT``, else the checkout beside the
    plugin, else the copy the plugin zip ships (``lcgan_qgis/_training``)."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV])
    shipped = Path(__file__).resolve().parents[1] / SHIPPED
    if not (plugin_parent() / "training" / "__init__.py").is_file() and (shipped / "training").is_dir():
        return shipped
    return plugin_parent()


def shipped_tooling(root: Path) -> str:
    """The tooling shipped beside a shipped ``training`` package (``root/lcgan_qgis``), or ``""``."""
    folder = root / "lcgan_qgis"
    own = folder.resolve() == Path(__file__).resolve().parents[1]  # (the checkout: its package has the tooling)
    return str(folder) if not own and (folder / "tooling" / "__init__.py").is_file() else ""


def _venv_python(root: Path) -> Path:
    return root / ".venv" / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def training_environment() -> tuple[str, dict[str, str]]:
    """``(interpreter, environment)`` for the child; raises :class:`TrainingUnavailableError` naming what was tried.

    ``PYTHONPATH`` holds the training package's folder and the plugin's (``training`` imports ``lcgan_qgis.core``).
    """
    env = dict(os.environ)
    root = training_root()
    paths = list(dict.fromkeys([str(root), str(plugin_parent())]))
    tried = []
    candidates: list[tuple[str, list[str]]] = []
    if os.environ.get(PYTHON_ENV):
        candidates.append((os.environ[PYTHON_ENV], []))
    if _venv_python(root).is_file():
        candidates.append((str(_venv_python(root)), []))
    try:
        from ..installer.companions import child_paths
        from ..installer.interpreter import python_executable

        candidates.append((python_executable(), child_paths()))
    except LcganError as exc:
        tried.append(str(exc))
    for python, extra in candidates:
        probe_env = dict(env, PYTHONPATH=os.pathsep.join([*paths, *extra, env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep))
        try:
            done = subprocess.run([python, "-c", PROBE, shipped_tooling(root)], env=probe_env, cwd=str(root),
                                  capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"{python}: {exc}")
            continue
        if done.returncode == 0:
            return python, probe_env
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        tried.append(f"{python}: {last}")
    raise TrainingUnavailableError("Fine-tuning needs PyTorch: the lcgan panel's Adapt button offers to install it "
                                   "(into its own folder), or set LCGAN_TRAINING_PYTHON. Tried: " + "; ".join(tried))


def child_command(python: str, module: str, args: Sequence[str]) -> list[str]:
    """``python -m module args`` with the shipped tooling (if any) added to ``lcgan_qgis`` first (:data:`BOOT`)."""
    return [python, "-c", BOOT, shipped_tooling(training_root()), module, *args]


@dataclass
class TrainingRun:
    """Arguments of ``python -m training.finetune`` and what the run reported."""

    args: list[str]
    out: str
    last: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    returncode: int | None = None
    canceled: bool = False

    @property
    def report_path(self) -> Path:
        return Path(self.out) / "report.json"


def finetune_args(imagery: Sequence[str], out: str, landcover: Sequence[str] = (), labels: str = "",
                  class_field: str = "", scheme: str = "", train_area: str = "", val_area: str = "",
                  minutes: float = 0.0, steps: int = 0, base: str = "", device: str = "cpu",
                  threads: int = 1, int8: bool = True, crop: int = 128,
                  class_balance: float = 0.0, elevation: str = "") -> list[str]:
    """The child's command-line arguments (after ``-m training.finetune``)."""
    args = ["--imagery", *imagery, "--out", out, "--device", device, "--threads", str(threads), "--crop", str(crop),
            "--progress-lines"]
    args += ["--steps", str(steps)] if steps else ["--minutes", f"{minutes:g}"]
    for flag, value in (("--base", base), ("--labels", labels), ("--class-field", class_field),
                        ("--scheme", scheme), ("--train-area", train_area), ("--val-area", val_area)):
        if value:
            args += [flag, value]
    if landcover:
        args += ["--landcover", *landcover]
    if not int8:
        args.append("--no-int8")
    if class_balance:
        args += ["--class-balance", f"{class_balance:g}"]
    if elevation:
        args += ["--elevation", elevation]
    return args


def run_finetune(run: TrainingRun, is_canceled: Callable[[], bool], on_progress: Callable[[dict[str, Any]], None],
                 on_line: Callable[[str], None]) -> TrainingRun:
    """Start the child, relay its progress and log lines, stop it gracefully on cancel; returns ``run``.

    Raises:
        TrainingUnavailableError: no interpreter with torch.
    """
    python, env = training_environment()
    env["PYTHONUNBUFFERED"] = "1"
    flags = subprocess.CREATE_NEW_PROCESS_GROUP if sys.platform == "win32" else 0  # type: ignore[attr-defined]
    child = subprocess.Popen(child_command(python, "training.finetune", run.args), cwd=str(training_root()), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                             creationflags=flags)
    lines: list[str] = []

    def pump() -> None:
        for raw in child.stdout or ():
            lines.append(raw.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    stop_sent: float | None = None
    seen = 0
    while True:
        done = child.poll() is not None
        while seen < len(lines):
            line = lines[seen]
            seen += 1
            if line.startswith(PROGRESS_PREFIX):
                try:
                    run.last = json.loads(line[len(PROGRESS_PREFIX):])
                except ValueError:
                    continue
                on_progress(run.last)
            elif line.strip():
                run.lines.append(line)
                on_line(line)
        if done:
            break
        if is_canceled() and stop_sent is None:
            run.canceled = True
            stop_sent = time.monotonic()
            child.send_signal(signal.CTRL_BREAK_EVENT if sys.platform == "win32" else  # type: ignore[attr-defined]
                              signal.SIGTERM)
        elif stop_sent is not None and time.monotonic() - stop_sent > STOP_WAIT_S:
            child.kill()
        time.sleep(0.2)
    reader.join(timeout=5)
    while seen < len(lines):  # what arrived after the last poll
        line = lines[seen]
        seen += 1
        if not line.startswith(PROGRESS_PREFIX) and line.strip():
            run.lines.append(line)
            on_line(line)
    run.returncode = child.returncode
    return run


def error_line(run: TrainingRun) -> str:
    """The child's own one-line error (its last ERROR line less the time and logger name), or its last line."""
    errors = [line.split(" ERROR ", 1)[1].split(": ", 1)[-1] for line in run.lines if " ERROR " in line]
    return errors[-1] if errors else (run.lines[-1] if run.lines else f"exit status {run.returncode}")


class FineTuneTask(QgsTask):
    """:func:`run_finetune` as a ``QgsTask`` (the dock's "Adapt" section); ``on_done(run, error)`` on the main
    thread."""

    def __init__(self, run: TrainingRun, on_done: Callable[[TrainingRun, str], None] | None = None,
                 on_line: Callable[[str], None] | None = None) -> None:
        super().__init__(f"lcgan: fine-tune -> {Path(run.out).name}", QgsTask.Flag.CanCancel)
        self.run_state, self._on_done, self._on_line = run, on_done, on_line
        self.error = ""
        self.unavailable = False  # no interpreter with PyTorch: the caller may offer the install

    def run(self) -> bool:
        def progress(p: dict[str, Any]) -> None:
            self.setProgress(100.0 * float(p.get("fraction", 0.0)))

        try:
            run_finetune(self.run_state, self.isCanceled, progress, self._log)
        except LcganError as exc:
            self.error, self.unavailable = str(exc), isinstance(exc, TrainingUnavailableError)
            return False
        if self.run_state.returncode != 0 and not self.run_state.canceled:
            self.error = error_line(self.run_state)
            return False
        return not self.run_state.canceled

    def _log(self, line: str) -> None:
        QgsMessageLog.logMessage(line, "lcgan", Qgis.MessageLevel.Info)
        if self._on_line is not None:
            self._on_line(line)

    def finished(self, result: bool) -> None:
        if self._on_done is not None:
            self._on_done(self.run_state, self.error)
