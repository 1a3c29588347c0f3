"""Which Python runs pip: QGIS's own interpreter, found from where QGIS's Python lives, never ``sys.executable``
blindly.

Inside QGIS ``sys.executable`` is not reliable: on Windows it is ``qgis-bin.exe``, on macOS the ``QGIS`` binary,
and on Linux Python may fill it from the first ``python3`` on ``PATH`` (a 3.11.7 from ``/usr/local`` beside QGIS's
3.11.2: issue 25, point 3). QGIS's Python console shows the reliable anchor: ``sys.prefix`` (``sys.base_prefix``
outside a virtual environment) is the installation whose standard library QGIS runs, and the interpreter sits at a
fixed place in it for each platform's layout:

- Linux (distribution packages, conda, flatpak): ``<prefix>/bin/python3.X``;
- Windows (OSGeo4W, the standalone installer, conda): ``<prefix>\\python.exe`` (OSGeo4W: ``apps\\Python3X``);
- macOS (QGIS.app): ``QGIS.app/Contents/MacOS/bin/python3.X`` beside the QGIS binary, else ``<prefix>/bin``
  (Python.framework, conda).

A candidate is accepted only when it reports the running Python's own version.
"""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..core.errors import LcganError

VERSION_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
PROBE_TIMEOUT_S = 20


class InterpreterNotFoundError(LcganError):
    """No interpreter of QGIS's own Python could be found to run pip."""


def interpreter_candidates(system: str, executable: str, prefix: str, version: tuple[int, int]) -> list[Path]:
    """Where QGIS's interpreter may be, most likely first, for a platform's layout.

    Args:
        system: ``platform.system()`` ("Linux", "Windows", "Darwin").
        executable: ``sys.executable`` (the QGIS binary on Windows and macOS; trusted only when it is named like
            a Python and lies in the installation's own folder or its ``bin``, not e.g. ``/usr/local/bin``).
        prefix: ``sys.base_prefix``: the installation whose standard library runs.
        version: ``sys.version_info[:2]``.
    """
    major, minor = version
    exe, root = Path(executable), Path(prefix)
    if system == "Windows":
        candidates = [root / "python.exe", root / "bin" / "python.exe", root / f"python{major}.exe"]
    else:
        names = (f"python{major}.{minor}", f"python{major}", "python")
        folders = [exe.parent / "bin", root / "bin"] if system == "Darwin" else [root / "bin"]
        candidates = [folder / name for folder in folders for name in names]
    if exe.name.lower().startswith("python") and exe.parent in (root, root / "bin"):
        candidates.append(exe)
    return list(dict.fromkeys(candidates))


def _probe(path: Path) -> str | None:
    """The version ``path`` reports (``"3.11.2"``), ``None`` when it does not run."""
    try:
        run = subprocess.run([str(path), "-c", VERSION_PROBE], capture_output=True, text=True,
                             timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout.strip() if run.returncode == 0 else None


def find_interpreter(candidates: list[Path], wanted: str, probe: Callable[[Path], str | None] = _probe) -> Path:
    """The first existing candidate whose ``probe`` reports ``wanted`` (``"3.11.2"``).

    Raises:
        InterpreterNotFoundError: none does; the message lists where it looked.
    """
    for path in candidates:
        if path.is_file() and probe(path) == wanted:
            return path
    raise InterpreterNotFoundError(
        f"QGIS's Python {wanted} interpreter was not found (looked in: {', '.join(map(str, candidates))}); install "
        f"the packages from a shell with that Python: python -m pip install --target <folder> ...")


@functools.lru_cache(maxsize=1)
def python_executable() -> str:
    """QGIS's own Python interpreter (see the module's rule).

    Raises:
        InterpreterNotFoundError: no candidate runs this Python's version.
    """
    candidates = [path for prefix in dict.fromkeys((sys.prefix, sys.base_prefix))  # (a virtual environment first)
                  for path in interpreter_candidates(platform.system(), sys.executable, prefix, sys.version_info[:2])]
    return str(find_interpreter(candidates, ".".join(map(str, sys.version_info[:3]))))
