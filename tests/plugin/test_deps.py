"""The dependency check says exactly what is missing, and the installer's pip command keeps numpy untouched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lcgan_qgis.core.deps import (
    check_runtime,
    deps_dir,
    install_command,
    prepare_target,
    provider_summary,
    runtime_pins,
)

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def test_runtime_is_complete_in_the_development_environment() -> None:
    import numpy
    import onnxruntime

    status = check_runtime()
    assert status.ok and status.missing == () and status.problem == ""
    assert (status.numpy_version, status.onnxruntime_version) == (numpy.__version__, onnxruntime.__version__)


def test_pins_come_from_the_runtime_requirements() -> None:
    pins = runtime_pins()
    assert pins["onnxruntime-gpu"] == "1.31.1"
    assert {"flatbuffers", "protobuf", "packaging"} <= set(pins)
    assert "numpy" not in pins


def test_install_command_is_pinned_no_deps_and_local() -> None:
    command = install_command(("onnxruntime-gpu==1.31.1", "protobuf==7.36.2"))
    assert command[1:4] == ["-m", "pip", "install"]
    assert "--no-deps" in command and command[command.index("--target") + 1] == str(deps_dir())
    assert command[-2:] == ["onnxruntime-gpu==1.31.1", "protobuf==7.36.2"]
    assert not any("numpy" in part for part in command)
    assert deps_dir().parent.parent == REPO / "lcgan_qgis"  # inside the plugin folder


@pytest.mark.skipif(not SYSTEM_PYTHON.is_file(), reason="no system Python without onnxruntime to compare with")
def test_a_python_without_onnxruntime_is_told_exactly_what_to_install() -> None:
    """Debian's own Python (what QGIS embeds) lacks onnxruntime: the check names the pinned packages."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from lcgan_qgis.core.deps import check_runtime; "
            "s = check_runtime(); print(json.dumps([s.ok, list(s.missing), s.problem, s.numpy_version]))")
    out = subprocess.run([str(SYSTEM_PYTHON), "-c", code, str(REPO)], capture_output=True, text=True, timeout=60,
                         cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    ok, missing, problem, numpy_version = json.loads(out.stdout)
    pins = runtime_pins()
    assert not ok
    assert f"onnxruntime-gpu=={pins['onnxruntime-gpu']}" in missing
    assert "onnxruntime (No module named 'onnxruntime')" in problem
    assert numpy_version.startswith("1.24")


@pytest.mark.slow
def test_pip_installs_a_pinned_package_into_a_local_folder_without_touching_numpy(tmp_path: Path) -> None:
    """The real installer command, on the smallest pinned package (needs PyPI)."""
    import numpy

    pin = f"flatbuffers=={runtime_pins()['flatbuffers']}"
    target = prepare_target(tmp_path / "python_deps" / "py311")
    assert (tmp_path / "python_deps" / ".gitignore").read_text() == "*\n"
    run = subprocess.run(install_command([pin], target), capture_output=True, text=True, timeout=300)
    if run.returncode != 0 and ("NewConnectionError" in run.stdout + run.stderr
                                or "Could not fetch" in run.stdout + run.stderr):
        pytest.skip("PyPI is unreachable from this machine")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (target / "flatbuffers" / "__init__.py").is_file()
    assert not list(target.glob("numpy*"))
    check = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(target)!r}); import flatbuffers, numpy; "
                               "print(flatbuffers.__file__, numpy.__version__)"],
        capture_output=True, text=True, timeout=60,
    )
    path, version = check.stdout.split()
    assert path.startswith(str(target)) and version == numpy.__version__


def test_provider_summary_names_the_provider_and_the_reason() -> None:
    line = provider_summary("auto")
    assert line.startswith(("CPUExecutionProvider: CPU (", "CUDAExecutionProvider: CUDA GPU"))
    assert provider_summary("cpu") == "CPUExecutionProvider: CPU (requested)"
    assert "Unknown device 'tpu'" in provider_summary("tpu")


@pytest.mark.slow
def test_message_bar_install_button_runs_pip_with_its_log_visible(iface, qtbot, tmp_path: Path) -> None:
    """The one-click path: message bar -> Install -> dialog with pip's log -> re-check (needs PyPI)."""
    from lcgan_qgis.core.deps import DependencyStatus
    from lcgan_qgis.plugin.gui.deps_dialog import offer_install

    pin = f"flatbuffers=={runtime_pins()['flatbuffers']}"
    status = DependencyStatus(False, (pin,), "Missing Python package(s): flatbuffers (No module named 'x').", "1.24.2")
    button = offer_install(iface, status, target=tmp_path / "python_deps" / "py311")
    assert button is not None and button.text() == f"Install {pin}"
    assert any("Missing Python package(s)" in item.text() for item in iface.messageBar().items())
    button.click()
    dialog = offer_install.dialog
    qtbot.waitUntil(lambda: dialog.exit_code is not None, timeout=300_000)
    log = dialog.log.toPlainText()
    if dialog.exit_code != 0 and ("NewConnectionError" in log or "Could not fetch" in log):
        pytest.skip("PyPI is unreachable from this machine")
    assert log.startswith("$ ") and "--no-deps" in log.splitlines()[0]
    assert "Successfully installed flatbuffers" in log
    assert dialog.exit_code == 0 and dialog.summary.text().startswith("Done: onnxruntime")
    assert (tmp_path / "python_deps" / "py311" / "flatbuffers" / "__init__.py").is_file()
