"""Runtime dependencies: is onnxruntime importable beside QGIS's numpy, and if not, how to install it.

The plugin needs ``onnxruntime`` (the ``onnxruntime-gpu`` wheel, which also runs on CPU) and its pure-Python
dependencies. They are installed, when missing, into a plugin-local folder (``python_deps/py3XX`` inside the plugin)
that is appended to ``sys.path``: pip runs with ``--no-deps`` and exact pins from ``requirements/runtime.txt``
(shipped in the plugin as ``requirements-runtime.txt``), so QGIS's own numpy is never replaced or upgraded (GDAL and
QGIS are compiled against it).

OpenVINO is an optional speed-up offered the same way (``requirements/optional.txt``, shipped as
``requirements-optional.txt``): :func:`check_openvino` says whether it runs and what installing it takes.

QGIS-free, so it can be checked from any Python.
"""

from __future__ import annotations

import importlib
import logging
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .files import AtomicFile

LOG = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).resolve().parents[1]  # the plugin folder (lcgan_qgis), not core
#: pip distribution -> module that proves it is importable. numpy is QGIS's and never installed by us.
RUNTIME_MODULES = {
    "onnxruntime-gpu": "onnxruntime",
    "flatbuffers": "flatbuffers",
    "protobuf": "google.protobuf",
    "packaging": "packaging",
}
#: Optional speed-ups: pip distribution -> module. Sizes measured for openvino 2026.4.1 (CPython 3.11, x86-64).
OPTIONAL_MODULES = {"openvino": "openvino", "openvino-telemetry": "openvino_telemetry"}
OPENVINO_DOWNLOAD_MB, OPENVINO_INSTALLED_MB = 59, 180
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([A-Za-z0-9_.+\-]+)\s*(?:#.*)?$")
_NUMPY_ABI_HINTS = ("compiled using NumPy", "numpy.core.multiarray failed to import", "_ARRAY_API not found",
                    "numpy.dtype size changed")


@dataclass(frozen=True)
class DependencyStatus:
    """Result of :func:`check_runtime`.

    Attributes:
        ok: onnxruntime imports and works with this numpy.
        missing: pip requirement specs to install (``name==version``), empty when ``ok``.
        problem: one line saying exactly what is wrong (empty when ``ok``).
        numpy_version: the numpy QGIS runs with (kept as is).
        onnxruntime_version: the imported onnxruntime's version, or ``""``.
    """

    ok: bool
    missing: tuple[str, ...]
    problem: str
    numpy_version: str
    onnxruntime_version: str = ""


def deps_dir() -> Path:
    """The plugin-local folder pip installs into (one per Python minor version: wheels are ABI-specific)."""
    return PLUGIN_DIR / "python_deps" / f"py{sys.version_info.major}{sys.version_info.minor}"


def add_deps_to_path() -> bool:
    """Append :func:`deps_dir` to ``sys.path`` when it exists (after QGIS's own paths, so numpy stays QGIS's)."""
    folder = str(deps_dir())
    if Path(folder).is_dir() and folder not in sys.path:
        sys.path.append(folder)
        importlib.invalidate_caches()
        return True
    return False


def requirements_path() -> Path:
    """The pinned runtime requirements: the plugin's copy (zip) or the repository's ``requirements/runtime.txt``."""
    shipped = PLUGIN_DIR / "requirements-runtime.txt"
    return shipped if shipped.is_file() else PLUGIN_DIR.parent / "requirements" / "runtime.txt"


def optional_requirements_path() -> Path:
    """The pins of the optional speed-ups: the plugin's copy (zip) or ``requirements/optional.txt``."""
    shipped = PLUGIN_DIR / "requirements-optional.txt"
    return shipped if shipped.is_file() else PLUGIN_DIR.parent / "requirements" / "optional.txt"


def runtime_pins(path: Path | None = None) -> dict[str, str]:
    """``{distribution: version}`` of every ``name==version`` line in the runtime requirements."""
    path = path or requirements_path()
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _importable(module: str) -> str | None:
    """``None`` when ``module`` imports, else the import error in one line."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def check_runtime() -> DependencyStatus:
    """Check that onnxruntime (and what it needs) imports with the numpy QGIS uses; say exactly what is missing."""
    add_deps_to_path()
    try:
        import numpy
    except ImportError:
        return DependencyStatus(False, (), "numpy is missing from this QGIS's Python; reinstall QGIS (it ships "
                                "numpy) before installing lcgan's dependencies.", "")
    pins = runtime_pins()
    missing, reasons = [], []
    for dist, module in RUNTIME_MODULES.items():
        error = _importable(module)
        if error is None:
            continue
        if any(hint in error for hint in _NUMPY_ABI_HINTS):
            return DependencyStatus(
                False, (), f"{dist} is installed but was built for another numpy than QGIS's {numpy.__version__} "
                f"({error}). Remove it (or the folder {deps_dir()}) and install the pinned version.",
                numpy.__version__,
            )
        missing.append(f"{dist}=={pins[dist]}" if dist in pins else dist)
        reasons.append(f"{module} ({error})")
    if missing:
        return DependencyStatus(
            False, tuple(missing), "Missing Python package(s): " + "; ".join(reasons) + ".", numpy.__version__
        )
    import onnxruntime

    return DependencyStatus(True, (), "", numpy.__version__, onnxruntime.__version__)


@dataclass(frozen=True)
class OptionalStatus:
    """Result of :func:`check_openvino`: ``installed`` and a one-line ``summary``; ``requirements`` are the pinned
    specs the installer would run (empty when installed)."""

    installed: bool
    summary: str
    requirements: tuple[str, ...] = ()


def check_openvino() -> OptionalStatus:
    """Whether the optional OpenVINO backend runs here, or what installing it would take (size included)."""
    add_deps_to_path()
    from .openvino_backend import openvino_status

    openvino_status.cache_clear()  # (it may have been installed since the last look)
    status = openvino_status()
    if status.missing is None:
        bf16 = "with bf16" if status.bf16 else "without bf16 (this CPU does not report it)"
        return OptionalStatus(True, f"OpenVINO {status.version} runs on this CPU ({status.device_name}), {bf16}.")
    pins = runtime_pins(optional_requirements_path())
    requirements = tuple(f"{dist}=={pins[dist]}" if dist in pins else dist for dist in OPTIONAL_MODULES)
    return OptionalStatus(False, f"OpenVINO (optional) is not available: {status.missing}. It usually runs lcgan "
                                 f"2-4x faster on a CPU; installing takes a {OPENVINO_DOWNLOAD_MB} MB download "
                                 f"({OPENVINO_INSTALLED_MB} MB on disk).", requirements)


def python_executable() -> str:
    """The Python interpreter of this QGIS (``sys.executable`` is the QGIS binary on some platforms)."""
    exe = Path(sys.executable)
    if exe.name.lower().startswith("python"):
        return str(exe)
    for candidate in (Path(sys.prefix) / "python.exe", Path(sys.prefix) / "bin" / "python3"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("python3") or "python3"


def install_command(requirements: tuple[str, ...] | list[str], target: Path | None = None) -> list[str]:
    """The pip command installing ``requirements`` into the plugin-local folder, never touching numpy."""
    target = target or deps_dir()
    return [
        python_executable(), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
        "--no-deps", "--upgrade", "--target", str(target), *requirements,
    ]


def prepare_target(target: Path | None = None) -> Path:
    """Create the install folder (with a ``.gitignore`` so a repository checkout stays clean)."""
    target = target or deps_dir()
    target.mkdir(parents=True, exist_ok=True)
    ignore = target.parent / ".gitignore"
    if not ignore.exists():
        with AtomicFile(ignore) as tmp:
            tmp.write_text("*\n", encoding="utf-8")
    return target


def provider_summary(device: str = "auto") -> str:
    """One line: which onnxruntime execution provider a run with ``device`` would use, and why."""
    try:
        from .runtime import describe_providers

        provider, reason = describe_providers(device)
    except ImportError as exc:
        return f"onnxruntime is not available ({exc})."
    except Exception as exc:  # DeviceError and onnxruntime faults: report them, never crash QGIS
        return str(exc)
    return f"{provider}: {reason}"
