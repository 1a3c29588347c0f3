"""Whether the runtime packages import beside QGIS's numpy, and making a fresh install usable in the running QGIS.

:func:`check_runtime` (onnxruntime) and :func:`check_openvino` (the optional backend) return the same
:class:`DependencyStatus`, which the installer dialog offers to mend. After pip finishes, :func:`activate` makes the
new packages importable in the running QGIS, or says plainly why only a restart can (a copy of one of them was
already loaded in this session). :func:`torch_status` looks at PyTorch's folder without importing it (QGIS's
process never imports torch).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..core.model.drivers import OPENVINO_PACKAGES as OPENVINO
from .folders import add_deps_to_path, deps_dir, torch_dir
from .plan import CPU_WHEEL, DOWNLOAD_MB, HELPERS, INSTALLED_MB, MODULES, TORCH_VERSION, is_openvino, mb

_NUMPY_ABI_HINTS = ("compiled using NumPy", "numpy.core.multiarray failed to import", "_ARRAY_API not found",
                    "numpy.dtype size changed")


@dataclass(frozen=True)
class DependencyStatus:
    """What :func:`check_runtime`, :func:`check_openvino` and :func:`torch_status` found: what the installer offers.

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
class Activation:
    """What :func:`activate` found after an install: ``ready`` in this session, or ``restart_needed``."""

    status: DependencyStatus
    restart_needed: bool
    message: str

    @property
    def ready(self) -> bool:
        return self.status.ok and not self.restart_needed


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


def check_openvino() -> DependencyStatus:
    """Whether the optional OpenVINO backend runs here (``summary`` says on what CPU), or what installing it takes
    (``missing`` and a ``problem`` with the download size)."""
    add_deps_to_path()
    import numpy

    from ..core.model.openvino_backend import openvino_status

    openvino_status.cache_clear()  # (it may have been installed since the last look)
    status = openvino_status()
    if status.missing is None:
        bf16 = "with bf16" if status.bf16 else "without bf16: this CPU does not report it"
        return DependencyStatus(True, (), "", numpy.__version__, summary=f"OpenVINO {status.version} runs on this "
                                f"CPU, {status.device_name}, {bf16}.")
    size = f"a {mb(sum(DOWNLOAD_MB[d] for d in OPENVINO))} download, {mb(INSTALLED_MB['openvino'])} on disk"
    if _import_error(MODULES["openvino"]) is not None:
        problem = (f"OpenVINO (optional) is not available: it is not installed. It usually runs lcgan 2-4x faster "
                   f"on a CPU; installing it takes {size}.")
    else:
        problem = (f"OpenVINO (optional) is not available: it is installed but does not start here. Installing "
                   f"the pinned version again takes {size}.")
    return DependencyStatus(False, OPENVINO, problem, numpy.__version__, details=status.missing)


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
        from ..core.model.runtime import describe_providers

        provider, reason = describe_providers(device)
    except ImportError as exc:
        return f"onnxruntime is not available: {exc}."
    except Exception as exc:  # DeviceError and onnxruntime faults: report them, never crash QGIS
        return str(exc)
    return f"{provider}: {reason}"


def torch_status(target: Path | None = None) -> DependencyStatus:
    """Whether PyTorch (for fine-tuning) is installed in its folder, read from its files (never imported here)."""
    target = target or torch_dir()
    versions = sorted(p.name[len("torch-"):-len(".dist-info")] for p in target.glob("torch-*.dist-info"))
    if (target / "torch" / "__init__.py").is_file() and versions:
        return DependencyStatus(True, (), "", "", summary=f"PyTorch {versions[-1]} for fine-tuning, in {target}.")
    return DependencyStatus(False, ("torch",), f"Fine-tuning needs PyTorch {TORCH_VERSION}, which is not installed "
                            f"(it goes into its own folder, {target}).", "")
