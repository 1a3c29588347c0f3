"""Runtime dependencies: is onnxruntime importable beside QGIS's numpy, which wheel to install, and how.

The plugin needs ``onnxruntime`` and the pure-Python packages it imports (protobuf, flatbuffers, packaging). When
they are missing they are installed into a plugin-local folder (``python_deps/py3XX`` inside the plugin) that is
appended to ``sys.path``: pip runs with ``--no-deps``, ``--only-binary`` and exact pins from
``requirements/runtime.txt`` (shipped in the plugin as ``requirements-runtime.txt``), so QGIS's own numpy is never
replaced or upgraded (GDAL and QGIS are compiled against it).

Two wheels provide the ``onnxruntime`` module: ``onnxruntime`` (CPU only, about 24 MB) and ``onnxruntime-gpu``
(NVIDIA GPUs and the CPU, about 256 MB). :func:`recommended_variant` picks the GPU wheel only where an NVIDIA driver
is present; the user may choose the other. Both are pinned to the same version (the ``onnxruntime-gpu`` line of
the runtime requirements: the two are released together).

After pip finishes, :func:`activate` makes the new packages importable in the running QGIS, or says plainly why
only a restart can (a copy of one of them was already loaded in this session).

OpenVINO, an optional speed-up (a second CPU backend), is installed by the same installer: its distributions
(:data:`OPENVINO`) sit in the same tables, pinned in ``requirements/optional.txt`` (shipped as
``requirements-optional.txt``); :func:`check_openvino` says whether it runs, or what installing it takes, in the
same :class:`DependencyStatus` that :func:`check_runtime` returns for onnxruntime.

QGIS-free and onnxruntime-free, so it can be checked from any Python.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import logging
import platform
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .model.drivers import OPENVINO_PACKAGES as OPENVINO
from .model.drivers import cuda_driver_problem
from .storage.files import AtomicFile

LOG = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).resolve().parents[1]  # the plugin folder (lcgan_qgis), not core
CPU_WHEEL, GPU_WHEEL = "onnxruntime", "onnxruntime-gpu"
VARIANTS = (CPU_WHEEL, GPU_WHEEL)
#: The packages onnxruntime imports, beyond numpy (QGIS's, never installed by us).
HELPERS = ("protobuf", "flatbuffers", "packaging")
#: pip distribution -> the module that proves it importable.
MODULES = {CPU_WHEEL: "onnxruntime", GPU_WHEEL: "onnxruntime", "protobuf": "google.protobuf",
           "flatbuffers": "flatbuffers", "packaging": "packaging", "openvino": "openvino",
           "openvino-telemetry": "openvino_telemetry"}
#: Download sizes in MB of the pinned wheels (``pip download``, Linux x86-64, CPython 3.11, 2026-12-01): the
#: installer announces them before it starts. Windows wheels are of the same order.
DOWNLOAD_MB = {CPU_WHEEL: 23.8, GPU_WHEEL: 255.6, "protobuf": 0.34, "flatbuffers": 0.03, "packaging": 0.04,
               "openvino": 59.1, "openvino-telemetry": 0.03}
#: Space on disk once installed, in MB, where it is far above the download (openvino 2026.4.1: measured).
INSTALLED_MB = {"openvino": 180}
#: Platforms (``platform.system()``, ``platform.machine()`` lowercased) with an onnxruntime-gpu wheel on PyPI.
GPU_WHEEL_PLATFORMS = {("linux", "x86_64"), ("windows", "amd64")}
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([A-Za-z0-9_.+\-]+)\s*(?:#.*)?$")
_NUMPY_ABI_HINTS = ("compiled using NumPy", "numpy.core.multiarray failed to import", "_ARRAY_API not found",
                    "numpy.dtype size changed")


@dataclass(frozen=True)
class DependencyStatus:
    """Result of :func:`check_runtime` (onnxruntime) and :func:`check_openvino` (the optional backend): what the
    installer offers.

    Attributes:
        ok: the package imports and works with this numpy.
        missing: the distributions to install (``"onnxruntime"`` stands for either wheel), empty when ``ok``.
        problem: one plain sentence for the user (empty when ``ok``).
        numpy_version: the numpy QGIS runs with (kept as is).
        onnxruntime_version: the imported onnxruntime's version, or ``""``.
        details: the import errors, for the log and the diagnostics (empty when ``ok``).
        summary: when ``ok``, one line on what runs (e.g. ``"OpenVINO 2026.4.1 runs on this CPU ..."``).
    """

    ok: bool
    missing: tuple[str, ...]
    problem: str
    numpy_version: str
    onnxruntime_version: str = ""
    details: str = ""
    summary: str = ""


@dataclass(frozen=True)
class InstallPlan:
    """What the installer will fetch: pinned requirements, their download size, and the folder."""

    requirements: tuple[str, ...]
    download_mb: float
    target: Path

    def describe(self) -> str:
        """``"onnxruntime 1.31.1 (23.8 MB), protobuf 7.36.2 (0.3 MB): about 24 MB to download"`` (and the space
        on disk where it is far above the download)."""
        parts, disk = [], 0.0
        for spec in self.requirements:
            name, _, version = spec.partition("==")
            parts.append(f"{name} {version} ({_mb(DOWNLOAD_MB.get(name, 0.0))})")
            disk += INSTALLED_MB.get(name, 0.0)
        on_disk = f", about {_mb(disk)} on disk" if disk else ""
        return f"{', '.join(parts)}: about {_mb(self.download_mb)} to download{on_disk}"


@dataclass(frozen=True)
class Activation:
    """What :func:`activate` found after an install: ``ready`` in this session, or ``restart_needed``."""

    status: DependencyStatus
    restart_needed: bool
    message: str

    @property
    def ready(self) -> bool:
        return self.status.ok and not self.restart_needed


def _mb(value: float) -> str:
    if value < 0.1:
        return "under 0.1 MB"
    return f"{value:.0f} MB" if value >= 10 else f"{value:.1f} MB"


def deps_dir() -> Path:
    """The plugin-local folder pip installs into (one per Python minor version: wheels are ABI-specific)."""
    return PLUGIN_DIR / "python_deps" / f"py{sys.version_info.major}{sys.version_info.minor}"


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


def requirements_path() -> Path:
    """The pinned runtime requirements: the plugin's copy (zip) or the repository's ``requirements/runtime.txt``."""
    shipped = PLUGIN_DIR / "requirements-runtime.txt"
    return shipped if shipped.is_file() else PLUGIN_DIR.parent / "requirements" / "runtime.txt"


def optional_requirements_path() -> Path:
    """The pins of the optional speed-ups: the plugin's copy (zip) or ``requirements/optional.txt``."""
    shipped = PLUGIN_DIR / "requirements-optional.txt"
    return shipped if shipped.is_file() else PLUGIN_DIR.parent / "requirements" / "optional.txt"


def runtime_pins(path: Path | None = None) -> dict[str, str]:
    """``{distribution: version}`` of every ``name==version`` line in the runtime requirements, plus the CPU wheel
    at the GPU wheel's version."""
    path = path or requirements_path()
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    if GPU_WHEEL in pins:
        pins.setdefault(CPU_WHEEL, pins[GPU_WHEEL])
    return pins


def _import_error(module: str) -> str | None:
    """``None`` when ``module`` imports, else the import error in one line."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def _plain_problem(missing: list[str]) -> str:
    helpers = [m for m in missing if m != CPU_WHEEL]
    uses = f"{' and '.join(helpers)}, which it uses" if helpers else ""
    if CPU_WHEEL in missing:
        extra = f" (nor are {uses})" if uses else ""
        return f"lcgan needs onnxruntime to run its models, and it is not installed{extra}."
    return f"onnxruntime is installed but cannot start without {uses.replace(', which it uses', '')}."


def check_runtime() -> DependencyStatus:
    """Check that onnxruntime (and what it needs) imports with the numpy QGIS uses; say plainly what is missing."""
    add_deps_to_path()
    try:
        import numpy
    except ImportError:
        return DependencyStatus(False, (), "numpy is missing from this QGIS's Python; reinstall QGIS (it ships "
                                "numpy) before installing lcgan's dependencies.", "")
    missing, details = [], []
    for dist in (CPU_WHEEL, *HELPERS):
        error = _import_error(MODULES[dist])
        if error is None:
            continue
        if any(hint in error for hint in _NUMPY_ABI_HINTS):
            return DependencyStatus(
                False, (), f"The installed {dist} was built for another numpy than QGIS's {numpy.__version__}. "
                f"Remove the folder {deps_dir()}, restart QGIS and install again.", numpy.__version__,
                details=f"{MODULES[dist]}: {error}",
            )
        missing.append(dist)
        details.append(f"{MODULES[dist]}: {error}")
    if missing:
        return DependencyStatus(False, tuple(missing), _plain_problem(missing), numpy.__version__,
                                details="; ".join(details))
    import onnxruntime

    return DependencyStatus(True, (), "", numpy.__version__, onnxruntime.__version__,
                            summary=f"onnxruntime {onnxruntime.__version__} with numpy {numpy.__version__}.")


def is_openvino(distributions: Iterable[str]) -> bool:
    """Whether ``distributions`` (names or ``name==version``) are the optional OpenVINO backend's only."""
    names = {spec.partition("==")[0].lower() for spec in distributions}
    return bool(names) and names <= set(OPENVINO)


def check_openvino() -> DependencyStatus:
    """Whether the optional OpenVINO backend runs here (``summary`` says on what CPU), or what installing it takes
    (``missing`` and a ``problem`` with the download size)."""
    add_deps_to_path()
    import numpy

    from .model.openvino_backend import openvino_status

    openvino_status.cache_clear()  # (it may have been installed since the last look)
    status = openvino_status()
    if status.missing is None:
        bf16 = "with bf16" if status.bf16 else "without bf16: this CPU does not report it"
        return DependencyStatus(True, (), "", numpy.__version__, summary=f"OpenVINO {status.version} runs on this "
                                f"CPU, {status.device_name}, {bf16}.")
    size = f"a {_mb(sum(DOWNLOAD_MB[d] for d in OPENVINO))} download, {_mb(INSTALLED_MB['openvino'])} on disk"
    if _import_error(MODULES["openvino"]) is not None:
        problem = (f"OpenVINO (optional) is not available: it is not installed. It usually runs lcgan 2-4x faster "
                   f"on a CPU; installing it takes {size}.")
    else:
        problem = (f"OpenVINO (optional) is not available: it is installed but does not start here. Installing "
                   f"the pinned version again takes {size}.")
    return DependencyStatus(False, OPENVINO, problem, numpy.__version__, details=status.missing)


def nvidia_driver_version() -> str | None:
    """The NVIDIA kernel driver version (Linux ``/proc/driver/nvidia/version``), ``"present"`` when only the
    library loads, ``None`` without a driver."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text(encoding="utf-8", errors="replace")
        match = re.search(r"Kernel Module\s+([0-9.]+)", text)
        if match:
            return match.group(1)
    except OSError:
        pass
    return "present" if cuda_driver_problem() is None else None


def gpu_wheel_available() -> bool:
    """Whether PyPI has an onnxruntime-gpu wheel for this platform."""
    return (platform.system().lower(), platform.machine().lower()) in GPU_WHEEL_PLATFORMS


def recommended_variant() -> tuple[str, str]:
    """``(wheel, why)``: ``onnxruntime-gpu`` only where an NVIDIA driver is present and PyPI has the wheel."""
    if not gpu_wheel_available():
        return CPU_WHEEL, f"onnxruntime-gpu has no wheel for {platform.system()} {platform.machine()}"
    problem = cuda_driver_problem()
    if problem is not None:
        return CPU_WHEEL, f"{problem}, so the GPU package would only run on the CPU"
    return GPU_WHEEL, "an NVIDIA GPU driver is present"


def install_plan(missing: Iterable[str], variant: str | None = None, target: Path | None = None) -> InstallPlan:
    """Pinned requirements for the ``missing`` distributions (the runtime's, or the optional OpenVINO backend's),
    ``"onnxruntime"`` as ``variant`` (default: :func:`recommended_variant`).

    Raises:
        ValueError: ``variant`` is not one of :data:`VARIANTS`, or a distribution has no pin.
    """
    variant = variant or recommended_variant()[0]
    if variant not in VARIANTS:
        raise ValueError(f"Unknown onnxruntime package {variant!r}; choose one of: {', '.join(VARIANTS)}.")
    optional = optional_requirements_path()
    pins = {**(runtime_pins(optional) if optional.is_file() else {}), **runtime_pins()}
    names = [variant if dist in VARIANTS else dist for dist in missing]
    unpinned = [name for name in names if name not in pins]
    if unpinned:
        raise ValueError(f"No pinned version for {', '.join(unpinned)} in {requirements_path()} or {optional}.")
    return InstallPlan(tuple(f"{name}=={pins[name]}" for name in names),
                       sum(DOWNLOAD_MB.get(name, 0.0) for name in names), target or deps_dir())


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
    """The pip command installing ``requirements`` into the plugin-local folder: wheels only, no dependencies
    (numpy stays QGIS's). pip's own settings apply (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, a proxy...)."""
    target = target or deps_dir()
    return [
        python_executable(), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
        "--no-deps", "--only-binary=:all:", "--upgrade", "--target", str(target), *requirements,
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


def loaded_modules(requirements: Iterable[str]) -> dict[str, str]:
    """``{module: file}`` of the requirements' modules already imported in this session (before an install)."""
    loaded = {}
    for spec in requirements:
        module = MODULES.get(spec.partition("==")[0].lower())
        if module and sys.modules.get(module) is not None:  # (None: an import blocked on purpose)
            loaded[module] = str(getattr(sys.modules[module], "__file__", None) or "a namespace package")
    return loaded


def _first_on_path(module: str) -> str | None:
    """Where a fresh interpreter would import ``module``'s top-level package from (``None``: nowhere)."""
    top = module.split(".")[0]
    spec = importlib.machinery.PathFinder.find_spec(top, sys.path)
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if module != top:  # a namespace package (google): the first folder holding the submodule
        sub = module.split(".")[1]
        locations = [loc for loc in locations if (Path(loc) / sub).exists()]
    return locations[0] if locations else spec.origin


def activate(requirements: Iterable[str], loaded_before: dict[str, str], target: Path | None = None) -> Activation:
    """After pip installed ``requirements`` into ``target``: make them importable in this session, or say why
    only a restart can.

    Args:
        requirements: what was installed (``name==version``).
        loaded_before: :func:`loaded_modules` taken before the install: Python cannot replace a package that is
            already loaded (compiled extensions stay in memory), so those need a restart.
        target: the install folder (default :func:`deps_dir`).
    """
    target = target or deps_dir()
    add_deps_to_path(target)
    if loaded_before:
        status = DependencyStatus(False, (), "", "", details="; ".join(f"{m} loaded from {f}"
                                                                       for m, f in loaded_before.items()))
        shadowed = {m: _first_on_path(m) for m in loaded_before}
        shadowed = {m: where for m, where in shadowed.items() if not str(where or "").startswith(str(target))}
        if shadowed:
            where = "; ".join(f"{m}: {path}" for m, path in shadowed.items())
            return Activation(status, True, f"Installed, but another copy of {', '.join(shadowed)} is found first "
                              f"({where}). Remove that copy or update it, then restart QGIS.")
        return Activation(status, True, f"Installed. Restart QGIS to use it: {', '.join(sorted(loaded_before))} "
                          "was already loaded in this session, and Python cannot swap a loaded package.")
    names = [r.partition("==")[0].lower() for r in requirements]
    installed = {MODULES[n] for n in names if n in MODULES}
    for name in list(sys.modules):  # leftovers of imports that failed before the install (a failed import of a
        if any(name == m or name.startswith(m + ".") for m in installed):  # package keeps the submodules it loaded)
            del sys.modules[name]
    importlib.invalidate_caches()
    if is_openvino(names):
        status = check_openvino()
        ready = f"{status.summary} It is ready; no restart is needed."
    else:
        status = check_runtime()
        ready = f"onnxruntime {status.onnxruntime_version} is installed and ready; no restart is needed."
    if status.ok:
        return Activation(status, False, ready)
    first = status.problem.split(" ", 1)[0]  # ("OpenVINO" keeps its capitals, "The" does not)
    problem = status.problem if any(c.isupper() for c in first[1:]) else status.problem[0].lower() + status.problem[1:]
    return Activation(status, False, f"pip finished, but {problem}")


def provider_summary(device: str = "auto") -> str:
    """One line: which onnxruntime execution provider a run with ``device`` would use, and why."""
    try:
        from .model.runtime import describe_providers

        provider, reason = describe_providers(device)
    except ImportError as exc:
        return f"onnxruntime is not available: {exc}."
    except Exception as exc:  # DeviceError and onnxruntime faults: report them, never crash QGIS
        return str(exc)
    return f"{provider}: {reason}"
