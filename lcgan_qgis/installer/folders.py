"""Where the installer puts packages, and how they join ``sys.path``.

Packages live in the QGIS profile's ``lcgan`` folder (``<profile>/lcgan/python_deps/py3XX``), beside the OpenVINO
cache, never inside the plugin folder: QGIS's Plugin Manager deletes the plugin folder when it upgrades or reinstalls
the plugin, and with it 250 MB of onnxruntime and OpenVINO (issue 25, point 3). PyTorch, which only the fine-tuning
child process imports, gets its own folder (``<profile>/lcgan/torch/py3XX``) that QGIS's own process never adds.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from ..core.storage.files import AtomicFile

#: The plugin folder as Python imported it (not resolved: a profile may hold a link to a checkout).
PLUGIN_DIR = Path(__file__).absolute().parents[1]
#: Overrides the folder for tests and unusual setups.
HOME_ENV = "LCGAN_HOME"


def profile_dir(plugin_dir: Path | None = None) -> Path | None:
    """The QGIS profile holding ``plugin_dir`` (``<profile>/python/plugins/lcgan_qgis``), else ``None`` (a checkout)."""
    plugin_dir = plugin_dir or PLUGIN_DIR
    if plugin_dir.parent.name == "plugins" and plugin_dir.parent.parent.name == "python":
        return plugin_dir.parents[2]
    return None


def lcgan_home(plugin_dir: Path | None = None) -> Path:
    """The plugin's own folder of data: ``$LCGAN_HOME``, else ``<profile>/lcgan`` (what
    ``QgsApplication.qgisSettingsDirPath()`` names), else ``.lcgan`` beside a checkout's package."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV])
    plugin_dir = plugin_dir or PLUGIN_DIR
    profile = profile_dir(plugin_dir)
    return profile / "lcgan" if profile is not None else plugin_dir.parent / ".lcgan"


def _python_tag() -> str:
    return f"py{sys.version_info.major}{sys.version_info.minor}"  # wheels are ABI-specific


def deps_dir(home: Path | None = None) -> Path:
    """The folder pip installs the runtime packages into (one per Python minor version)."""
    return (home or lcgan_home()) / "python_deps" / _python_tag()


def torch_dir(home: Path | None = None) -> Path:
    """PyTorch's own folder, for the fine-tuning child process only (QGIS's process never imports torch)."""
    return (home or lcgan_home()) / "torch" / _python_tag()


def add_deps_to_path(target: Path | None = None) -> bool:
    """Append ``target`` (default :func:`deps_dir`) to ``sys.path`` when it exists, after QGIS's own paths so numpy
    stays QGIS's; forget what the import system remembered about it. ``True`` when it was added now."""
    folder = str(target or deps_dir())
    if not Path(folder).is_dir():
        return False
    sys.path_importer_cache.pop(folder, None)  # a folder looked up before it existed is cached as "no finder"
    importlib.invalidate_caches()
    if folder in sys.path:
        return False
    sys.path.append(folder)
    return True


def prepare_target(target: Path | None = None) -> Path:
    """Create the install folder (with a ``.gitignore`` so a checkout stays clean)."""
    target = target or deps_dir()
    target.mkdir(parents=True, exist_ok=True)
    ignore = target.parent / ".gitignore"
    if not ignore.exists():
        with AtomicFile(ignore) as tmp:
            tmp.write_text("*\n", encoding="utf-8")
    return target


def requirements_path() -> Path:
    """The pinned runtime requirements: the plugin's copy (zip) or the repository's ``requirements/runtime.txt``."""
    shipped = PLUGIN_DIR / "requirements-runtime.txt"
    return shipped if shipped.is_file() else PLUGIN_DIR.parent / "requirements" / "runtime.txt"


def optional_requirements_path() -> Path:
    """The pins of the optional packages: the plugin's copy (zip) or ``requirements/optional.txt``."""
    shipped = PLUGIN_DIR / "requirements-optional.txt"
    return shipped if shipped.is_file() else PLUGIN_DIR.parent / "requirements" / "optional.txt"
