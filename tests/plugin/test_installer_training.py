"""The PyTorch offer gives fine-tuning everything it imports: QGIS's Python (Debian's here) has no onnx nor ml_dtypes,
so the offer adds them (pinned, without dependencies: numpy stays QGIS's) to PyTorch's folder, with their sizes; it
lists nothing the interpreter already has; and after pip, the plugin's start check passes in Debian's Python and a
real fine-tuning run finishes (report.png skipped, with one line, where matplotlib is missing).

pip cannot download here: the companions come from a local wheel folder repacked from this environment, and
PyTorch's folder holds links to this environment's torch (a stand-in for the first pip command, a 190 MB download)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lcgan_qgis.installer import companions
from lcgan_qgis.installer.plan import TORCH_INDEX, TORCH_VERSION, install_commands, is_torch, torch_plan
from lcgan_qgis.installer.status import torch_status
from tests.plugin.test_training_algorithm import _region
from tools.plugin_profile import install_plugin, qgis_env

from .wheelhouse import repack

SYSTEM_PYTHON = Path("/usr/bin/python3")
TAG = f"py{sys.version_info.major}{sys.version_info.minor}"
#: torch and the distributions it requires (pip puts them all into PyTorch's folder).
TORCH_DISTRIBUTIONS = ("torch", "filelock", "typing-extensions", "sympy", "mpmath", "networkx", "jinja2", "markupsafe",
                       "fsspec")
needs_system_python = pytest.mark.skipif(not SYSTEM_PYTHON.is_file(), reason="no system Python (QGIS's) to probe")

SESSION = """
import json, subprocess, sys
from lcgan_qgis.installer.plan import install_commands, torch_plan
from lcgan_qgis.installer.status import torch_status
from lcgan_qgis.plugin import training_process as tp

before = torch_status()
plan = torch_plan(missing=before.missing)
commands = install_commands(plan)
runs = [subprocess.run(c, capture_output=True, text=True, timeout=600) for c in commands]
after = torch_status()
python, env = tp.training_environment()
out, image, landcover = sys.argv[1:4]
run = tp.TrainingRun(tp.finetune_args([image], out, landcover=[landcover], steps=2, threads=1, crop=32), out)
tp.run_finetune(run, lambda: False, lambda progress: None, lambda line: None)
print("SEEN " + json.dumps({
    "missing_before": before.missing, "problem": before.problem, "commands": commands, "describe": plan.describe(),
    "pip": [[r.returncode, r.stdout[-1500:] + r.stderr[-1500:]] for r in runs], "after": [after.ok, after.summary],
    "python": python, "pythonpath": env["PYTHONPATH"], "returncode": run.returncode, "lines": run.lines[-8:],
    "matplotlib": [line for line in run.lines if "matplotlib" in line],
    "modules_here": sorted(m for m in ("torch", "onnx", "ml_dtypes", "rasterio") if m in sys.modules)}))
"""


def _bare_python(folder: Path) -> Path:
    """An interpreter of this Python without its site-packages (``-S``): no numpy, rasterio, shapely, matplotlib."""
    script = folder / "bare-python"
    script.write_text(f'#!/bin/sh\nexec {SYSTEM_PYTHON} -S "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return script


def _link_distribution(name: str, folder: Path) -> None:
    """Link an installed distribution's top-level packages and ``.dist-info`` into ``folder`` (as pip would put
    them there); distributions without a file list (the system's own) are left out."""
    dist = importlib.metadata.distribution(name)
    root = Path(dist.locate_file(""))
    tops = {item.parts[0] for item in dist.files or [] if not str(item).startswith("..")}
    for top in sorted(tops - {"__pycache__"}):
        if (root / top).exists() and not (folder / top).exists():
            (folder / top).symlink_to(root / top, target_is_directory=(root / top).is_dir())


@needs_system_python
def test_the_offer_lists_only_what_the_interpreter_lacks(tmp_path: Path) -> None:
    """Debian's Python has rasterio, shapely and matplotlib but no torch, onnx nor ml_dtypes; the same Python without
    its site-packages lacks rasterio (with its own dependencies) and shapely too; this environment has everything."""
    target = tmp_path / "torch"
    debian = torch_status(target, str(SYSTEM_PYTHON))
    assert not debian.ok and debian.missing[0] == "torch"
    assert {"onnx", "ml-dtypes"} <= set(debian.missing) and not {"rasterio", "shapely", "affine"} & set(debian.missing)
    assert "nor onnx and ml_dtypes, which it imports" in debian.problem and "report.png" not in debian.problem
    bare = torch_status(target, str(_bare_python(tmp_path)))
    assert {"rasterio", "affine", "attrs", "certifi", "click", "cligj", "click-plugins", "pyparsing",
            "shapely"} <= set(bare.missing)
    assert "colorama" not in bare.missing and "importlib-metadata" not in bare.missing  # (Windows; Python < 3.10)
    assert "numpy" not in bare.missing and not [d for d in bare.missing if d not in companions.DISTRIBUTIONS]
    assert "the run skips report.png" in bare.problem  # (matplotlib: not offered, its absence said)
    assert torch_status(target, sys.executable).ok  # (this environment: torch, onnx, rasterio... all there)
    # a module in PyTorch's folder counts: the child has that folder on its path
    (target / "onnx").mkdir(parents=True)
    (target / "onnx" / "__init__.py").write_text("", encoding="utf-8")
    assert "onnx" not in torch_status(target, str(SYSTEM_PYTHON)).missing


def test_the_offer_shows_the_companions_and_their_sizes_in_a_second_no_deps_command(tmp_path: Path) -> None:
    missing = ("torch", "onnx", "ml-dtypes", "rasterio", "affine", "shapely")
    plan = torch_plan("cpu", tmp_path / "torch", missing)
    text = plan.describe()
    for part in (f"torch {TORCH_VERSION}", "onnx 1.17.0 (16 MB)", "ml-dtypes 0.4.1 (2.2 MB)", "rasterio 1.4.3 (22 MB)",
                 "shapely 2.0.7 (2.5 MB)", "affine 2.4.0 (under 0.1 MB)"):
        assert part in text, text
    assert text.endswith("about 233 MB to download, about 920 MB on disk"), text  # 190 + 43; 760 + 160
    first, second = install_commands(plan)
    assert first[first.index("--index-url") + 1] == TORCH_INDEX["cpu"] and first[-1] == f"torch=={TORCH_VERSION}"
    assert "--no-deps" not in first  # (torch's own dependencies: sympy, networkx...; no numpy among them)
    assert "--no-deps" in second and "--index-url" not in second and "--only-binary=:all:" in second
    assert second[second.index("--target") + 1] == str(tmp_path / "torch")
    assert second[-5:] == ["onnx==1.17.0", "ml-dtypes==0.4.1", "rasterio==1.4.3", "affine==2.4.0", "shapely==2.0.7"]
    assert not any("numpy" in part for command in (first, second) for part in command)
    # PyTorch there already: one command, the companions only; nothing missing: nothing to offer
    (only,) = install_commands(torch_plan("cpu", tmp_path / "torch", ("onnx", "protobuf")))
    assert only[-2:] == ["onnx==1.17.0", "protobuf==7.36.2"] and "--no-deps" in only
    with pytest.raises(ValueError, match="Nothing to install"):
        torch_plan("cpu", tmp_path / "torch", ())
    assert is_torch(("onnx",)) and is_torch(missing) and not is_torch(("protobuf",))
    assert not is_torch(("onnxruntime", "protobuf"))


@needs_system_python
def test_the_dialog_offers_torch_and_the_companions_with_their_sizes(qgis_app, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian's Python in a fresh profile (no runtime folder yet, so no protobuf either)."""
    from lcgan_qgis.plugin.gui.deps_dialog import InstallDialog

    monkeypatch.setenv("LCGAN_HOME", str(tmp_path / "home"))
    status = torch_status(tmp_path / "torch", str(SYSTEM_PYTHON))
    assert status.missing == ("torch", "onnx", "protobuf", "ml-dtypes")
    dialog = InstallDialog(status, target=tmp_path / "torch")
    labels = [b.text() for b in dialog.variant_buttons.buttons()]
    assert labels[0] == (f"CPU only: torch {TORCH_VERSION}, onnx 1.17.0 (16 MB), protobuf 7.36.2 (0.3 MB), ml-dtypes "
                         "0.4.1 (2.2 MB): about 209 MB to download, about 843 MB on disk")
    assert labels[1].startswith(f"NVIDIA GPU (CUDA): torch {TORCH_VERSION}, onnx 1.17.0 (16 MB), ")
    assert "GB to download" in labels[1]
    assert "onnx 1.17.0 (16 MB)" in dialog.plan_label.text() and len(dialog.commands) == 2
    assert dialog.commands[1][-3:] == ["onnx==1.17.0", "protobuf==7.36.2", "ml-dtypes==0.4.1"]
    assert "nor onnx and ml_dtypes, which it imports" in dialog.problem_label.text()


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of the companions Debian's Python lacks, repacked from this environment (onnx: ~70 MB)."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    for name in ("onnx", "ml_dtypes"):
        repack(name, folder)
    return folder


@pytest.mark.slow
@needs_system_python
def test_after_the_offer_debian_python_passes_the_start_check_and_finetunes(tmp_path: Path, wheelhouse: Path) -> None:
    """The installed plugin in a fresh profile (runtime installed, PyTorch's folder holding torch): the offer lists
    onnx and ml_dtypes only, pip installs them from the wheel folder into PyTorch's folder, the start check then
    picks Debian's Python, and two real steps run; matplotlib is blocked in that folder: report.png is skipped."""
    config = tmp_path / "config"
    plugin = install_plugin(config, link_runtime=True)
    torch_folder = plugin.parents[2] / "lcgan" / "torch" / TAG
    torch_folder.mkdir(parents=True)
    for name in TORCH_DISTRIBUTIONS:
        _link_distribution(name, torch_folder)
    (torch_folder / "matplotlib").mkdir()  # (a QGIS without matplotlib)
    (torch_folder / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    region = _region(tmp_path)
    env = {**qgis_env(config), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse), "PIP_CONFIG_FILE": os.devnull,
           "PYTHONPATH": str(plugin.parent), "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen",
           "PATH": "/usr/bin:/bin"}
    for name in ("LCGAN_HOME", "LCGAN_TRAINING_PYTHON", "LCGAN_TRAINING_ROOT"):
        env.pop(name, None)
    out = tmp_path / "adapted"
    done = subprocess.run([str(SYSTEM_PYTHON), "-c", SESSION, str(out), region["image"], region["lc"]],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    seen = [line for line in done.stdout.splitlines() if line.startswith("SEEN ")]
    assert done.returncode == 0 and seen, done.stdout[-3000:] + done.stderr[-3000:]
    seen = json.loads(seen[-1][5:])
    assert seen["missing_before"] == ["onnx", "ml-dtypes"], seen["problem"]  # (protobuf: the runtime's folder)
    assert seen["problem"].startswith("Fine-tuning also imports onnx and ml_dtypes, which this QGIS's Python lacks")
    assert seen["describe"] == ("onnx 1.17.0 (16 MB), ml-dtypes 0.4.1 (2.2 MB): about 18 MB to download, about 83 MB "
                                "on disk")
    (command,) = seen["commands"]
    assert Path(command[0]).resolve() == SYSTEM_PYTHON.resolve()
    assert "--no-deps" in command and command[command.index("--target") + 1] == str(torch_folder)
    assert [code for code, _ in seen["pip"]] == [0], seen["pip"]
    assert (torch_folder / "onnx-1.17.0.dist-info").is_dir() and (torch_folder / "ml_dtypes").is_dir()
    assert not list(torch_folder.glob("numpy*"))  # numpy stays QGIS's
    assert seen["after"][0], seen["after"]
    # the start check: Debian's Python with PyTorch's folder (the companions) and the runtime's on its path
    assert Path(seen["python"]).resolve() == SYSTEM_PYTHON.resolve()
    runtime_folder = plugin.parents[2] / "lcgan" / "python_deps" / TAG
    assert seen["pythonpath"].split(os.pathsep)[2:4] == [str(torch_folder), str(runtime_folder)]
    assert seen["modules_here"] == []  # QGIS's side imported none of them
    assert seen["returncode"] == 0, seen["lines"]
    (line,) = seen["matplotlib"]
    assert line.endswith("matplotlib is not installed: report.png not drawn (report.json has the same numbers)")
    assert (out / "report.json").is_file() and (out / "rgb_to_landcover.int8.onnx").is_file()
    assert not (out / "report.png").exists()


def test_the_dialog_runs_a_plans_commands_in_turn_and_stops_at_a_failure(qgis_app, qtbot, tmp_path: Path,
                                                                          wheelhouse: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pip commands (as PyTorch, then its companions) from the wheel folder: both run, the folder is not added
    to QGIS's sys.path, and the status is asked again; a failed first command stops there."""
    from lcgan_qgis.installer.plan import InstallPlan
    from lcgan_qgis.installer.status import DependencyStatus
    from lcgan_qgis.plugin.gui.deps_dialog import InstallDialog

    for key, value in (("PIP_NO_INDEX", "1"), ("PIP_FIND_LINKS", str(wheelhouse)), ("PIP_CONFIG_FILE", os.devnull)):
        monkeypatch.setenv(key, value)
    target = tmp_path / "torch"
    for first, expected in (("ml-dtypes==0.4.1", 0), ("ml-dtypes==99.0", 1)):
        status = DependencyStatus(False, ("onnx", "ml-dtypes"), "Fine-tuning also imports onnx and ml_dtypes.", "")
        dialog = InstallDialog(status, target=target)
        dialog.plan = InstallPlan((first,), 2.2, target, then=InstallPlan(("onnx==1.17.0",), 16.0, target))
        dialog.commands = install_commands(dialog.plan)
        dialog.start()
        qtbot.waitUntil(lambda d=dialog: d.exit_code is not None, timeout=300_000)
        log = dialog.log.toPlainText()
        if expected:
            assert dialog.exit_code != 0 and log.count("\n$ ") + log.startswith("$ ") == 1, log[-2000:]
            assert "The installation failed" in dialog.result_label.text()
            continue
        assert dialog.exit_code == 0 and log.count("--no-deps") == 2, log[-2000:]
        assert log.index("ml-dtypes==0.4.1") < log.index("onnx==1.17.0")
        assert (target / "onnx-1.17.0.dist-info").is_dir() and (target / "ml_dtypes-0.4.1.dist-info").is_dir()
        assert str(target) not in sys.path and "onnx" not in {Path(p).name for p in sys.path}
        assert dialog.activation.ready and "no restart is needed" in dialog.result_label.text()
        assert dialog.problem_label.text() == "Installed: ml-dtypes==0.4.1, onnx==1.17.0."
