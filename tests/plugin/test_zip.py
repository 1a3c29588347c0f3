"""``make zip``: the Plugin Manager zip has the right layout, installs into a fresh QGIS profile, and
``qgis_process.bin run lcgan:rgb_to_landcover`` works from there."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.model.contract import Direction
from tests.fixtures.plugin import NLCD, read
from tools.make_zip import build
from tools.plugin_profile import install_plugin, qgis_env

QGIS_PROCESS = shutil.which("qgis_process.bin")


def test_zip_layout(tmp_path: Path) -> None:
    archive = build(tmp_path / "lcgan_qgis.zip")
    names = zipfile.ZipFile(archive).namelist()
    assert all(n.startswith("lcgan_qgis/") for n in names)
    for required in ("lcgan_qgis/__init__.py", "lcgan_qgis/metadata.txt", "lcgan_qgis/LICENSE",
                     "lcgan_qgis/plugin/lcgan_plugin.py", "lcgan_qgis/core/run/engine.py", "lcgan_qgis/core/run/job.py",
                     "lcgan_qgis/cli/__init__.py", "lcgan_qgis/requirements-runtime.txt",
                     "lcgan_qgis/resources/icons/lcgan.svg", "lcgan_qgis/resources/schemes/nlcd2011.json"):
        assert required in names, required
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n
                or "python_deps" in n or n.startswith("lcgan_qgis/tooling/")]
    bundled = sorted(p.name for p in (Path(__file__).parents[2] / "resources" / "models").glob("*.onnx"))
    assert [n.rsplit("/", 1)[1] for n in names if n.endswith(".onnx")] == bundled
    meta = configparser.ConfigParser(interpolation=None)
    meta.read_string(zipfile.ZipFile(archive).read("lcgan_qgis/metadata.txt").decode())
    general = meta["general"]
    assert general["qgisMinimumVersion"] == "3.22" and general["hasProcessingProvider"] == "yes"
    assert general["qgisMaximumVersion"] == "4.99" and general["supportsQt6"] == "True"
    assert "tested on QGIS 3.22" in general["about"]
    assert f"lcgan_qgis/{general['icon']}" in names
    assert build(tmp_path / "again.zip").read_bytes() == archive.read_bytes()  # reproducible


def test_the_zip_meets_the_plugin_repository_rules(tmp_path: Path) -> None:
    """Every rule of plugins.qgis.org's upload check holds (the size too: the bundled models store their weights
    as float16), except the placeholder links of metadata.txt, which wait for the project's public home."""
    from tools.plugin_repo_check import problems

    found = problems(build(tmp_path / "lcgan_qgis.zip"))
    assert all("is a placeholder" in p for p in found), found


def test_the_repository_check_names_what_would_be_refused(tmp_path: Path) -> None:
    from tools.plugin_repo_check import main, problems

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zipped:
        zipped.writestr("my-plugin/__init__.py", "")
        zipped.writestr("my-plugin/__pycache__/x.cpython-311.pyc", b"")
        zipped.writestr("my-plugin/metadata.txt", "[general]\nname=x\nversion=1\nqgisMinimumVersion=3.22\n"
                        "author=a/b\nexperimental=maybe\nsupportsQt6=perhaps\nrepository=ftp://x\n")
    found = problems(bad)
    for expected in ("must be a Python identifier", "my-plugin/LICENSE is missing", "lacks 'email'",
                     "lacks 'tracker'", "a __pycache__ folder is refused", ".pyc files are refused",
                     "'experimental=maybe' is not a boolean", "author may not contain slashes",
                     "'supportsQt6=perhaps' is not a boolean", "repository 'ftp://x' is not a web address"):
        assert any(expected in p for p in found), (expected, found)
    assert main([str(bad)]) == 1


@pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process.bin is not installed")
def test_zip_installs_into_a_fresh_profile_and_runs_through_qgis_process(models, zion_clips, tmp_path: Path) -> None:
    profile = tmp_path / "config"
    # The zip, unpacked into the fresh profile's plugin folder; the runtime packages are linked into the folder
    # the one-click installer fills (the installer itself is tested in test_deps.py).
    installed = install_plugin(profile)
    assert installed == profile / "profiles" / "default" / "python" / "plugins" / "lcgan_qgis"
    env = qgis_env(profile)
    env["QT_QPA_PLATFORM"] = "offscreen"

    def qgis_process(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([QGIS_PROCESS, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)

    enabled = qgis_process("plugins", "enable", "lcgan_qgis")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    assert "* lcgan_qgis" in enabled.stdout
    out = tmp_path / "landcover.tif"
    run = qgis_process("run", "lcgan:rgb_to_landcover", "--", f"INPUT={zion_clips['rgb']}",
                       f"MODEL={models[Direction.RGB_TO_LANDCOVER]}", "DEVICE=1", "BANDS=1,2,3", f"OUTPUT={out}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PROVIDER:\tCPUExecutionProvider" in run.stdout
    codes, ds = read(out)
    assert (ds.RasterXSize, ds.RasterYSize) == (300, 200)
    assert set(np.unique(codes).tolist()) <= {*NLCD.codes, NLCD.nodata_code}
    bad = qgis_process("run", "lcgan:rgb_to_landcover", "--", f"INPUT={zion_clips['rgb']}",
                       f"MODEL={tmp_path / 'missing.onnx'}", f"OUTPUT={tmp_path / 'x.tif'}")
    assert bad.returncode != 0 and "Model file not found" in bad.stdout + bad.stderr
    assert not (tmp_path / "x.tif").exists()
