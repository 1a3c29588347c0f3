"""What fine-tuning imports beside PyTorch, and which of it the interpreter that runs the child lacks.

The fine-tuning child (``lcgan_qgis/plugin/training_process.py``) runs QGIS's own Python with two of the installer's
folders before its own ``site-packages`` (:func:`child_paths`): PyTorch's, then the runtime's (onnxruntime,
protobuf). Beside torch it imports ``onnx`` (export), ``ml_dtypes`` (onnxruntime's int8 quantizer), ``rasterio`` and
``shapely`` (the training data), and, for ``report.png`` only, ``matplotlib``. QGIS's Python often lacks some:
Debian's has no onnx; OSGeo4W and the macOS builds differ. The PyTorch offer adds the missing ones (the companions)
to PyTorch's folder, which QGIS's own process never puts on ``sys.path``:

- numpy and GDAL stay QGIS's: every companion is installed without its dependencies (``--no-deps``), with the
  dependencies other than numpy listed and pinned here, each only where its module is missing;
- the rasterio wheel carries its own GDAL libraries; only the child loads them, beside QGIS's GDAL (measured with
  Debian's GDAL 3.6.2 and numpy 1.24.2: rasterio 1.4.3 and osgeo in one process, both import orders, and a real
  two-step fine-tuning run);
- matplotlib is not offered: without it the run skips ``report.png`` (one log line) and keeps ``report.json``.

Which modules are missing is asked of that interpreter itself (``importlib.util.find_spec`` in a subprocess, with the
child's folders on its path): the plugin's process imports none of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .folders import deps_dir, torch_dir

#: Module the child imports -> the distributions that provide it: the companion first, then its dependencies
#: beside numpy (protobuf: onnx's; the rest: rasterio's, colorama through click on Windows).
COMPANIONS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "protobuf"),
    "ml_dtypes": ("ml-dtypes",),
    "rasterio": ("rasterio", "affine", "attrs", "certifi", "click", "cligj", "click-plugins", "pyparsing",
                 "colorama", "importlib-metadata", "zipp"),
    "shapely": ("shapely",),
}
#: Pins: onnx is the training package's (requirements/train.txt; newer ones pull numpy 2), ml-dtypes the one that
#: runs with numpy 1.24 (requirements/dev.txt); protobuf is the runtime's own pin (requirements/runtime.txt).
PINS = {"onnx": "1.17.0", "ml-dtypes": "0.4.1", "rasterio": "1.4.3", "shapely": "2.0.7", "affine": "2.4.0",
        "attrs": "24.3.0", "certifi": "2026.10.19.post1", "click": "8.1.8", "cligj": "0.7.2",
        "click-plugins": "1.1.1", "pyparsing": "3.2.0", "colorama": "0.4.6", "importlib-metadata": "8.5.0",
        "zipp": "3.21.0"}
#: Distribution -> the module that proves it importable.
MODULE_OF = {"onnx": "onnx", "protobuf": "google.protobuf", "ml-dtypes": "ml_dtypes", "rasterio": "rasterio",
             "affine": "affine", "attrs": "attr", "certifi": "certifi", "click": "click", "cligj": "cligj",
             "click-plugins": "click_plugins", "pyparsing": "pyparsing", "colorama": "colorama",
             "importlib-metadata": "importlib_metadata", "zipp": "zipp", "shapely": "shapely"}
#: Dependencies needed on one platform or Python only (click's colorama; rasterio's importlib-metadata before 3.10).
ONLY_ON = {"colorama": lambda: sys.platform == "win32", "importlib-metadata": lambda: sys.version_info < (3, 10),
           "zipp": lambda: sys.version_info < (3, 10)}
#: Download and installed sizes in MB (``pip download --no-deps --only-binary=:all:``, Linux x86-64, CPython 3.11,
#: 2026-12-06; on disk: ``du`` after ``pip install --target``).
DOWNLOAD_MB = {"onnx": 16.05, "ml-dtypes": 2.16, "rasterio": 22.20, "shapely": 2.53, "affine": 0.02, "attrs": 0.06,
               "certifi": 0.13, "click": 0.10, "cligj": 0.01, "click-plugins": 0.01, "pyparsing": 0.11,
               "colorama": 0.03, "importlib-metadata": 0.03, "zipp": 0.01}
INSTALLED_MB = {"onnx": 72.7, "ml-dtypes": 10.5, "rasterio": 65.8, "shapely": 10.6}
#: Modules the run can do without, and what it skips then.
OPTIONAL = {"matplotlib": "report.png"}
#: Every distribution the PyTorch offer may list, and those that make an offer PyTorch's (see ``plan.is_torch``).
DISTRIBUTIONS = frozenset({"torch", *(d for dists in COMPANIONS.values() for d in dists)})
LEADS = frozenset({"torch", *(dists[0] for dists in COMPANIONS.values())})
PROBE_TIMEOUT_S = 60
_PROBE = ("import importlib.util, json, sys\n"
          "sys.path[:] = [p for p in sys.path if p]\n"  # (not the working folder's modules)
          "def found(name):\n"
          "    try:\n"
          "        return importlib.util.find_spec(name) is not None\n"
          "    except (ImportError, ValueError):\n"
          "        return False\n"
          "print(json.dumps([m for m in sys.argv[1:] if not found(m)]))")


class ProbeError(OSError):
    """The interpreter could not be asked what it has."""


def child_paths(target: Path | None = None) -> list[str]:
    """The installer's folders the fine-tuning child puts on ``PYTHONPATH`` before its own: PyTorch's (``target``,
    default :func:`~.folders.torch_dir`; the companions live there too), then the runtime's."""
    return [str(target or torch_dir()), str(deps_dir())]


def probe_modules() -> list[str]:
    """What :func:`missing_modules` asks about: torch, the companions with their dependencies, the optional ones."""
    wanted = ["torch", *COMPANIONS, *(MODULE_OF[d] for dists in COMPANIONS.values() for d in dists), *OPTIONAL]
    return list(dict.fromkeys(wanted))


def missing_modules(python: str, paths: Sequence[str], modules: Sequence[str] | None = None) -> set[str]:
    """The ``modules`` (default :func:`probe_modules`) that ``python`` cannot find with ``paths`` first on its
    ``PYTHONPATH`` (as the child has them); nothing is imported here.

    Raises:
        ProbeError: ``python`` did not run or answer.
    """
    modules = list(modules or probe_modules())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    try:
        done = subprocess.run([python, "-c", _PROBE, *modules], env=env, capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, check=False)
        return set(json.loads(done.stdout.strip().splitlines()[-1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        raise ProbeError(f"{python} could not say which modules it has: {exc}") from exc


def missing_distributions(missing: set[str]) -> tuple[str, ...]:
    """The distributions to install for the ``missing`` modules: torch, then each missing companion with those of
    its dependencies that are missing too and needed on this platform (never numpy)."""
    names = ["torch"] if "torch" in missing else []
    for module, dists in COMPANIONS.items():
        if module not in missing:
            continue
        names.append(dists[0])
        names += [d for d in dists[1:] if MODULE_OF[d] in missing and ONLY_ON.get(d, lambda: True)()]
    return tuple(dict.fromkeys(names))
