"""A fresh QGIS profile folder with the lcgan plugin installed from its Plugin Manager zip (tests, screenshots).

QGIS's own Python (Debian's) has no onnxruntime. A user gets it with the plugin's one-click installer; here the
packages of the running interpreter (the project's .venv) are linked into the same per-profile folder the installer
fills (``<profile>/lcgan/python_deps/py3XX``, outside the plugin folder), which the plugin adds to ``sys.path`` when
it loads. Installing again replaces the plugin folder whole, as QGIS's Plugin Manager does on an upgrade.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import zipfile
from pathlib import Path

from tools.make_zip import PLUGIN, build

RUNTIME_MODULES = ("onnxruntime", "flatbuffers", "google")  # google: protobuf's namespace package


def _site_folder(module: str) -> Path:
    """The folder this interpreter imports ``module`` from."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{module} is not importable here; run with the project's .venv (make setup)")
    for location in spec.submodule_search_locations:
        if module != "google" or (Path(location) / "protobuf").is_dir():
            return Path(location)
    raise SystemExit(f"no folder with protobuf found for {module}")


def install_plugin(config_dir: Path, enable: bool = False, link_runtime: bool = True) -> Path:
    """Install the zip into ``config_dir`` (a ``QGIS_CUSTOM_CONFIG_PATH``) and link the runtime packages.

    Args:
        config_dir: the folder QGIS is pointed at; the default profile lives below it.
        enable: also mark the plugin enabled in the profile's settings (the desktop reads them at start).
        link_runtime: link this interpreter's onnxruntime into the profile's lcgan folder (``False``: leave the
            plugin without its runtime, as a user who has not yet installed it has it).

    Returns:
        The installed plugin folder.
    """
    profile = config_dir / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    archive = build(config_dir / f"{PLUGIN}.zip")
    shutil.rmtree(plugins / PLUGIN, ignore_errors=True)  # (the Plugin Manager removes the old folder first)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(plugins)
    deps = profile / "lcgan" / "python_deps" / f"py{sys.version_info.major}{sys.version_info.minor}"
    for module in RUNTIME_MODULES if link_runtime else ():
        deps.mkdir(parents=True, exist_ok=True)
        link = deps / module
        if not link.exists():
            link.symlink_to(_site_folder(module), target_is_directory=True)
    if enable:
        settings = profile / "QGIS" / "QGIS3.ini"
        settings.parent.mkdir(parents=True, exist_ok=True)
        with settings.open("a", encoding="utf-8") as ini:
            ini.write(f"\n[PythonPlugins]\n{PLUGIN}=true\n")
    return plugins / PLUGIN


def qgis_env(config_dir: Path) -> dict[str, str]:
    """An environment for ``qgis`` / ``qgis_process.bin`` using ``config_dir`` and QGIS's own Python only."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["QGIS_CUSTOM_CONFIG_PATH"] = str(config_dir)
    return env
