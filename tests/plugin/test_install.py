"""The one-click install, end to end, in QGIS's own Python and without network: a local wheel folder stands in for
PyPI (pip's own ``PIP_NO_INDEX`` / ``PIP_FIND_LINKS`` settings), and the same QGIS process then imports
onnxruntime and translates a raster, without a restart. When a copy of a package is already loaded, the dialog
says that QGIS must be restarted instead."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.installer.plan import GPU_WHEEL, runtime_pins
from tests.fixtures.onnx_factory import write_pointwise
from tests.fixtures.plugin import image_array, write_raster
from tools.plugin_profile import install_plugin, qgis_env

from .wheelhouse import repack

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
SESSION = Path(__file__).with_name("deps_session.py")
RUNTIME_DISTRIBUTIONS = ("onnxruntime-gpu", "protobuf", "flatbuffers")
TIMEOUT_S = 900

pytestmark = pytest.mark.skipif(not SYSTEM_PYTHON.is_file(), reason="no system Python (QGIS's) to install into")


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of the pinned runtime packages, repacked from this environment (onnxruntime-gpu: ~340 MB)."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    for name in RUNTIME_DISTRIBUTIONS:
        repack(name, folder)
    return folder


def _session(tmp_path: Path, wheelhouse: Path, mode: str, **extra: object) -> dict:
    plugin = install_plugin(tmp_path / "config", link_runtime=False)
    assert not (plugin.parents[2] / "lcgan" / "python_deps").exists()
    settings = {"plugins": str(plugin.parent), "repo": str(REPO), "mode": mode, "timeout_s": TIMEOUT_S - 120,
                "variant": GPU_WHEEL, **extra}
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(settings), encoding="utf-8")
    env = qgis_env(tmp_path / "config")
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse), PIP_CONFIG_FILE=os.devnull,
               QT_QPA_PLATFORM="offscreen", PATH="/usr/bin:/bin")
    run = subprocess.run([str(SYSTEM_PYTHON), str(SESSION), str(settings_file)], capture_output=True, text=True,
                         timeout=TIMEOUT_S, env=env, cwd=tmp_path)
    lines = [line for line in run.stdout.splitlines() if line.startswith("SEEN ")]
    assert run.returncode == 0 and lines, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(lines[-1][5:])


@pytest.mark.slow
def test_install_from_the_message_bar_then_translate_in_the_same_session(tmp_path: Path, wheelhouse: Path) -> None:
    model = write_pointwise(tmp_path / "rgb_to_landcover.onnx", Direction.RGB_TO_LANDCOVER)
    image = write_raster(tmp_path / "rgb.tif", image_array(64, 80))
    seen = _session(tmp_path, wheelhouse, "install", model=str(model), input=str(image),
                    output=str(tmp_path / "lc.tif"))
    pins = runtime_pins()
    # before: a plain, short message and a short button; no onnxruntime in this Python
    assert seen["onnxruntime_before"] is False
    assert seen["bar_texts"] == ["needs onnxruntime to run its models, and it is not installed (nor are "
                                 "protobuf and flatbuffers, which it uses)."]  # (after the title "lcgan")
    assert seen["buttons"] == ["Install…"] and max(seen["bar_widths"]) < 1000
    # the choice: CPU wheel recommended without an NVIDIA driver, both with their sizes
    assert seen["recommended"] == "onnxruntime"
    assert "about 24 MB to download" in seen["plan_before_choice"]
    assert any("onnxruntime-gpu" in label and "about 256 MB" in label for label in seen["radio_labels"])
    assert f"onnxruntime-gpu {pins['onnxruntime-gpu']} (256 MB)" in seen["plan"]
    # pip ran the pinned, wheels-only, no-deps command and finished
    assert seen["finished"] and seen["exit_code"] == 0, seen["log_tail"]
    assert "--no-deps" in seen["log_first_line"] and "--only-binary=:all:" in seen["log_first_line"]
    # ready without a restart: the dock and Processing use the fresh onnxruntime at once
    assert seen["ready"] is True and seen["restart_needed"] is False
    assert "no restart is needed" in seen["result"]
    assert not any("needs onnxruntime" in text for text in seen["bar_after"])
    profile = Path(seen["plugin_dir"]).parents[2]  # <profile>/python/plugins/lcgan_qgis
    assert seen["onnxruntime_file"].startswith(f"{profile}/lcgan/python_deps/")  # kept when the plugin is upgraded
    assert "CPU" in seen["dock_info"] and "14 classes" in seen["dock_info"]
    assert Path(seen["output"]).is_file() and seen["provider"] == "CPUExecutionProvider"


@pytest.mark.slow
def test_a_package_loaded_before_the_install_asks_for_a_restart(tmp_path: Path, wheelhouse: Path) -> None:
    seen = _session(tmp_path, wheelhouse, "restart")
    assert seen["preloaded"] == "1.0"
    assert seen["finished"] and seen["exit_code"] == 0, seen["log_tail"]
    assert seen["ready"] is False and seen["restart_needed"] is True
    assert "Restart QGIS to use it: flatbuffers was already loaded in this session" in seen["result"]
