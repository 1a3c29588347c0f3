"""Whether the runtime packages import beside QGIS's numpy, and making a fresh install usable in the running QGIS.

:func:`check_runtime` (onnxruntime) and :func:`check_openvino` (the optional backend) return the same
:class:`DependencyStatus`, which the installer dialog offers to mend. After pip finishes, :func:`activate` makes the
new packages importable in the running QGIS, or says plainly why only a restart can (a copy of one of them was
already loaded in this session). :func:`torch_status` asks the interpreter that runs the fine-tuning child whether
it finds torch and what fine-tuning imports beside it (:mod:`.companions`), without importing any of it (QGIS's
process never imports torch, nor rasterio's own GDAL).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import LcganError
from ..core.model.drivers import OPENVINO_PACKAGES as OPENVINO
from . import companions
from .folders import add_deps_to_path, deps_dir, torch_dir
from .interpreter import python_executable
from .plan import CPU_WHEEL, DOWNLOAD_MB, HELPERS, INSTALLED_MB, MODULES, TORCH_VERSION, is_openvino, is_torch, mb

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
    if is_torch(requirements):  # (PyTorch's folder never joins QGIS's sys.path: nothing to swap, no restart)
        status = torch_status(target)
        message = (f"{status.summary} It is ready; no restart is needed." if status.ok
                   else f"pip finished, but {status.problem[0].lower()}{status.problem[1:]}")
        return Activation(status, False, message)
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


def torch_status(target: Path | None = None, python: str | None = None) -> DependencyStatus:
    """Whether the fine-tuning child would find PyTorch and what it imports beside it, asked of ``python`` (default:
    QGIS's own interpreter, which runs the child) with the child's folders (PyTorch's: ``target``) on its path.
    ``missing`` lists the distributions to install (``"torch"`` and the companions); none is imported here."""
    target = target or torch_dir()
    try:
        python = python or python_executable()
        absent = companions.missing_modules(python, companions.child_paths(target))
        details = ""
    except (LcganError, OSError) as exc:  # (no interpreter: offer everything; the plan names the problem)
        absent, details = set(companions.probe_modules()), str(exc)
    missing = companions.missing_distributions(absent)
    optional = {module: what for module, what in companions.OPTIONAL.items() if module in absent}
    note = (f" Without {', '.join(optional)} the run skips {', '.join(optional.values())} (report.json keeps the "
            "numbers)." if optional else "")
    if not missing:
        versions = sorted(p.name[len("torch-"):-len(".dist-info")] for p in target.glob("torch-*.dist-info"))
        where = f"PyTorch {versions[-1]}, in {target}" if versions else f"PyTorch of {python}"
        return DependencyStatus(True, (), "", "", summary=f"Fine-tuning can run: {where}, and what it imports.{note}")
    lacking = [m for m in companions.COMPANIONS if m in absent]
    extra = ", ".join(lacking[:-1]) + (f" and {lacking[-1]}" if len(lacking) > 1 else "".join(lacking))
    if "torch" in missing:
        also = f", nor {extra}, which it imports" if extra else ""
        problem = (f"Fine-tuning needs PyTorch {TORCH_VERSION}, which is not installed{also} (it goes into its own "
                   f"folder, {target}).")
    else:
        problem = (f"Fine-tuning also imports {extra}, which this QGIS's Python lacks (it goes into "
                   f"PyTorch's folder, {target}).")
    return DependencyStatus(False, missing, problem + note, "", details=details)
