"""The installer's folders and interpreter (issue 25, point 3): packages live in the profile's lcgan folder and
survive reinstalling the zip; pip runs with QGIS's own interpreter on each platform's layout; PyTorch for
fine-tuning is offered with its size, into its own folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lcgan_qgis.installer.folders import deps_dir, lcgan_home, torch_dir
from lcgan_qgis.installer.interpreter import (
    InterpreterNotFoundError,
    find_interpreter,
    interpreter_candidates,
    python_executable,
)
from lcgan_qgis.installer.plan import TORCH_INDEX, TORCH_VERSION, install_command, recommended_torch, torch_plan
from lcgan_qgis.installer.status import torch_status
from tools.plugin_profile import install_plugin, qgis_env

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    return path


def _probe_from(versions: dict[Path, str]):
    return lambda path: versions.get(path)


def test_linux_finds_the_prefix_interpreter_not_another_python_on_path(tmp_path: Path) -> None:
    """sys.executable may be the first python3 on PATH (a 3.11.7 in /usr/local) beside QGIS's 3.11.2 in /usr."""
    qgis_python = _touch(tmp_path / "usr" / "bin" / "python3.11")
    other = _touch(tmp_path / "usr" / "local" / "bin" / "python3")
    candidates = interpreter_candidates("Linux", str(other), str(tmp_path / "usr"), (3, 11))
    assert other not in candidates  # outside QGIS's installation: never trusted
    probe = _probe_from({qgis_python: "3.11.2", other: "3.11.7"})
    assert find_interpreter(candidates, "3.11.2", probe) == qgis_python


def test_windows_osgeo4w_uses_python_exe_of_the_prefix_not_qgis_bin(tmp_path: Path) -> None:
    root = tmp_path / "OSGeo4W"
    qgis_bin = _touch(root / "bin" / "qgis-bin.exe")
    python = _touch(root / "apps" / "Python312" / "python.exe")
    candidates = interpreter_candidates("Windows", str(qgis_bin), str(root / "apps" / "Python312"), (3, 12))
    assert candidates[0] == python and qgis_bin not in candidates
    assert find_interpreter(candidates, "3.12.4", _probe_from({python: "3.12.4"})) == python


def test_macos_app_bundle_uses_the_python_beside_the_qgis_binary(tmp_path: Path) -> None:
    contents = tmp_path / "QGIS.app" / "Contents"
    qgis = _touch(contents / "MacOS" / "QGIS")
    python = _touch(contents / "MacOS" / "bin" / "python3.9")
    framework = contents / "Frameworks" / "Python.framework" / "Versions" / "3.9"
    candidates = interpreter_candidates("Darwin", str(qgis), str(framework), (3, 9))
    assert qgis not in candidates
    assert find_interpreter(candidates, "3.9.18", _probe_from({python: "3.9.18"})) == python
    # a Python.framework build (or conda) without the bundle's bin/: the prefix's own interpreter
    framework_python = _touch(framework / "bin" / "python3.9")
    python.unlink()
    assert find_interpreter(candidates, "3.9.18", _probe_from({framework_python: "3.9.18"})) == framework_python


def test_a_candidate_of_another_version_is_refused_with_the_places_looked(tmp_path: Path) -> None:
    python = _touch(tmp_path / "usr" / "bin" / "python3")
    candidates = interpreter_candidates("Linux", "/opt/qgis/bin/qgis", str(tmp_path / "usr"), (3, 11))
    with pytest.raises(InterpreterNotFoundError, match="Python 3.11.2 interpreter was not found"):
        find_interpreter(candidates, "3.11.2", _probe_from({python: "3.10.12"}))


def test_pip_runs_with_an_interpreter_of_this_very_python() -> None:
    command = install_command(["flatbuffers==25.12.19"], Path("/tmp/target"))
    run = subprocess.run([command[0], "-c", "import sys; print(sys.version)"], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.split()[0] == sys.version.split()[0]
    assert command[0] == python_executable() and command[1:4] == ["-m", "pip", "install"]


def test_packages_live_in_the_profile_lcgan_folder_outside_the_plugin(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.delenv("LCGAN_HOME", raising=False)
    plugin = tmp_path / "profiles" / "default" / "python" / "plugins" / "lcgan_qgis"
    home = lcgan_home(plugin)
    assert home == tmp_path / "profiles" / "default" / "lcgan"
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert deps_dir(home) == home / "python_deps" / tag and plugin not in deps_dir(home).parents
    assert torch_dir(home) == home / "torch" / tag


def test_torch_is_offered_with_its_size_from_its_own_index_into_its_own_folder(tmp_path: Path) -> None:
    plan = torch_plan("cpu", tmp_path / "torch", ("torch",))  # (an interpreter with all but torch)
    assert plan.requirements == (f"torch=={TORCH_VERSION}",) and plan.then is None
    assert "about 190 MB to download, about 760 MB on disk" in plan.describe()
    command = install_command(plan)
    assert command[command.index("--index-url") + 1] == TORCH_INDEX["cpu"]
    assert command[command.index("--target") + 1] == str(tmp_path / "torch") and "--no-deps" not in command
    assert "GB to download" in torch_plan("cuda", missing=("torch",)).describe()
    assert TORCH_VERSION in (REPO / "requirements" / "train.txt").read_text(encoding="utf-8")
    assert torch_status(tmp_path / "torch", sys.executable).ok  # (this environment has torch)


@pytest.mark.skipif(not SYSTEM_PYTHON.is_file(), reason="no system Python (QGIS's) without torch")
def test_torch_in_its_own_folder_is_found_by_the_interpreter_that_runs_the_child(tmp_path: Path) -> None:
    status = torch_status(tmp_path / "torch", str(SYSTEM_PYTHON))
    assert not status.ok and status.missing[0] == "torch" and "Fine-tuning needs PyTorch" in status.problem
    _touch(tmp_path / "torch" / "torch" / "__init__.py")
    (tmp_path / "torch" / f"torch-{TORCH_VERSION}.dist-info").mkdir()
    status = torch_status(tmp_path / "torch", str(SYSTEM_PYTHON))
    assert "torch" not in status.missing and status.problem.startswith("Fine-tuning also imports onnx")


@pytest.mark.skipif(not SYSTEM_PYTHON.is_file(), reason="no system Python (QGIS's) without onnxruntime")
def test_reinstalling_the_zip_over_itself_keeps_onnxruntime_usable_without_a_download(tmp_path: Path) -> None:
    """QGIS's Plugin Manager replaces the plugin folder on a reinstall or upgrade: the packages must be elsewhere."""
    config = tmp_path / "config"
    install_plugin(config, link_runtime=True)  # (stands in for the one-click install)
    plugin = install_plugin(config, link_runtime=False)  # the same zip again, over itself
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from lcgan_qgis.installer.status import "
            "check_runtime; s = check_runtime(); import onnxruntime; "
            "print(json.dumps([s.ok, s.problem, onnxruntime.__file__]))")
    env = {**qgis_env(config), "PIP_NO_INDEX": "1", "PATH": "/usr/bin:/bin"}
    env.pop("LCGAN_HOME", None)
    run = subprocess.run([str(SYSTEM_PYTHON), "-c", code, str(plugin.parent)], capture_output=True, text=True,
                         timeout=120, cwd="/", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    ok, problem, where = json.loads(run.stdout.splitlines()[-1])
    assert ok, problem
    assert os.path.commonpath([where, str(config / "profiles" / "default" / "lcgan")]) == str(
        config / "profiles" / "default" / "lcgan")


@pytest.mark.skipif(not SYSTEM_PYTHON.is_file(), reason="no system Python (QGIS's) without torch")
def test_the_installer_dialog_offers_torch_with_its_builds_and_sizes(qgis_app, tmp_path: Path) -> None:
    from lcgan_qgis.plugin.gui.deps_dialog import InstallDialog

    dialog = InstallDialog(torch_status(tmp_path / "torch", str(SYSTEM_PYTHON)), target=tmp_path / "torch")
    labels = [b.text() for b in dialog.variant_buttons.buttons()]
    assert labels[0].startswith("CPU only: torch ") and labels[1].startswith("NVIDIA GPU (CUDA): torch ")
    assert "MB to download" in labels[0] and "GB to download" in labels[1]
    assert dialog.variant == recommended_torch()[0]  # (CUDA only with an NVIDIA driver)
    assert dialog.command[dialog.command.index("--index-url") + 1] == TORCH_INDEX[dialog.variant]
    assert dialog.command[dialog.command.index("--target") + 1] == str(tmp_path / "torch")
    assert "Fine-tuning needs PyTorch" in dialog.problem_label.text()


@pytest.mark.skipif(not SYSTEM_PYTHON.is_file(), reason="no system Python (QGIS's) without onnxruntime")
def test_the_plugin_loads_in_a_qgis_without_onnxruntime(tmp_path: Path) -> None:
    """A new user has no onnxruntime: the plugin must still load, to offer the installer (no plugin module may
    import onnxruntime when it is loaded; the screenshot run found QGIS's "Couldn't load plugin" dialog)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from qgis.core import QgsApplication; "
            "app = QgsApplication([], False); app.initQgis(); import lcgan_qgis; "
            "from lcgan_qgis.plugin.lcgan_plugin import LcganPlugin; from lcgan_qgis.plugin.gui.dock import LcganDock; "
            "assert 'onnxruntime' not in sys.modules; print('LOADED')")
    env = {"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen", "LCGAN_HOME": str(tmp_path),
           "HOME": str(tmp_path)}
    run = subprocess.run([str(SYSTEM_PYTHON), "-c", code, str(REPO)], capture_output=True, text=True, timeout=120,
                         cwd="/", env=env)
    assert run.returncode == 0 and "LOADED" in run.stdout, run.stderr.strip().splitlines()[-3:]
