"""What the installer fetches: pinned requirements with their sizes, the CPU or GPU onnxruntime wheel, PyTorch for
fine-tuning, and the pip command.

pip runs with ``--no-deps``, ``--only-binary`` and exact pins from ``requirements/runtime.txt`` (shipped in the
plugin as ``requirements-runtime.txt``) and ``requirements/optional.txt`` (OpenVINO), so QGIS's own numpy is never
replaced (GDAL and QGIS are compiled against it). Two wheels provide the ``onnxruntime`` module: ``onnxruntime``
(CPU only) and ``onnxruntime-gpu`` (NVIDIA GPUs and the CPU); :func:`recommended_variant` picks the GPU wheel only
where an NVIDIA driver is present. PyTorch (fine-tuning only, run in a child process) goes into its own folder from
PyTorch's own index, with its dependencies (sympy, networkx...), CPU or CUDA likewise; a second pip command adds the
modules fine-tuning imports that QGIS's Python lacks (:mod:`.companions`: onnx, rasterio...), pinned and without
dependencies, into the same folder.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..core.model.drivers import OPENVINO_PACKAGES as OPENVINO
from ..core.model.drivers import cuda_driver_problem
from . import companions
from .folders import deps_dir, optional_requirements_path, requirements_path, torch_dir
from .interpreter import python_executable

CPU_WHEEL, GPU_WHEEL = "onnxruntime", "onnxruntime-gpu"
VARIANTS = (CPU_WHEEL, GPU_WHEEL)
#: The packages onnxruntime imports, beyond numpy (QGIS's, never installed by us).
HELPERS = ("protobuf", "flatbuffers", "packaging")
#: pip distribution -> the module that proves it importable.
MODULES = {CPU_WHEEL: "onnxruntime", GPU_WHEEL: "onnxruntime", "protobuf": "google.protobuf",
           "flatbuffers": "flatbuffers", "packaging": "packaging", "openvino": "openvino",
           "openvino-telemetry": "openvino_telemetry", "torch": "torch"}
#: Download sizes in MB of the pinned wheels (``pip download``, Linux x86-64, CPython 3.11, 2026-12-01): the
#: installer announces them before it starts. Windows wheels are of the same order.
DOWNLOAD_MB = {CPU_WHEEL: 23.8, GPU_WHEEL: 255.6, "protobuf": 0.34, "flatbuffers": 0.03, "packaging": 0.04,
               "openvino": 59.1, "openvino-telemetry": 0.03}
#: Space on disk once installed, in MB, where it is far above the download (openvino 2026.4.1: measured).
INSTALLED_MB = {"openvino": 180}
#: Platforms (``platform.system()``, ``platform.machine()`` lowercased) with an onnxruntime-gpu wheel on PyPI.
GPU_WHEEL_PLATFORMS = {("linux", "x86_64"), ("windows", "amd64")}
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([A-Za-z0-9_.+\-]+)\s*(?:#.*)?$")

#: PyTorch for fine-tuning: the training package's pin (requirements/train.txt).
TORCH_VERSION = "2.13.0"
TORCH_CPU, TORCH_CUDA = "cpu", "cuda"
#: PyTorch's own package index per build.
TORCH_INDEX = {TORCH_CPU: "https://download.pytorch.org/whl/cpu", TORCH_CUDA: "https://download.pytorch.org/whl/cu128"}
#: Approximate sizes in MB (download, on disk): the CPU build measured on disk here (754 MB, ``du -sh`` of the
#: venv's torch); the downloads and the CUDA build (torch plus NVIDIA's CUDA libraries) from the index's listings.
TORCH_MB = {TORCH_CPU: (190.0, 760.0), TORCH_CUDA: (3300.0, 6500.0)}


@dataclass(frozen=True)
class InstallPlan:
    """What the installer will fetch: pinned requirements, their download size, the folder, and pip's extra
    arguments (PyTorch's index)."""

    requirements: tuple[str, ...]
    download_mb: float
    target: Path
    pip_options: tuple[str, ...] = ("--no-deps",)
    disk_mb: float = 0.0
    then: InstallPlan | None = None  # a second pip command run after this one (PyTorch's companions)

    def steps(self) -> list[InstallPlan]:
        """This plan and those that follow it, one pip command each."""
        return [self, *(self.then.steps() if self.then is not None else [])]

    def describe(self) -> str:
        """``"onnxruntime 1.31.1 (23.8 MB), protobuf 7.36.2 (0.3 MB): about 24 MB to download"`` (and the space
        on disk where it is far above the download), over all the steps."""
        parts, disk, download = [], 0.0, 0.0
        sizes, installed = {**DOWNLOAD_MB, **companions.DOWNLOAD_MB}, {**INSTALLED_MB, **companions.INSTALLED_MB}
        for step in self.steps():
            disk, download = disk + step.disk_mb, download + step.download_mb
            for spec in step.requirements:
                name, _, version = spec.partition("==")
                size = sizes.get(name)
                parts.append(f"{name} {version}" + (f" ({mb(size)})" if size is not None else ""))
                disk += installed.get(name, 0.0)
        on_disk = f", about {mb(disk)} on disk" if disk else ""
        return f"{', '.join(parts)}: about {mb(download)} to download{on_disk}"

    @property
    def all_requirements(self) -> tuple[str, ...]:
        """The requirements of every step."""
        return tuple(spec for step in self.steps() for spec in step.requirements)


def mb(value: float) -> str:
    """``"24 MB"``, ``"3.3 GB"``, ``"0.3 MB"``."""
    if value < 0.1:
        return "under 0.1 MB"
    if value >= 1000:
        return f"{value / 1000:.1f} GB"
    return f"{value:.0f} MB" if value >= 10 else f"{value:.1f} MB"


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


def is_openvino(distributions: Iterable[str]) -> bool:
    """Whether ``distributions`` (names or ``name==version``) are the optional OpenVINO backend's only."""
    names = {spec.partition("==")[0].lower() for spec in distributions}
    return bool(names) and names <= set(OPENVINO)


def is_torch(distributions: Iterable[str]) -> bool:
    """Whether ``distributions`` are the fine-tuning install's: PyTorch and/or its companions (onnx, rasterio...),
    with some of their dependencies (protobuf alone is the runtime's)."""
    names = {spec.partition("==")[0].lower() for spec in distributions}
    return bool(names & companions.LEADS) and names <= companions.DISTRIBUTIONS


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


def recommended_torch() -> tuple[str, str]:
    """``(build, why)``: the CUDA build of PyTorch only where an NVIDIA driver is present."""
    problem = cuda_driver_problem()
    if problem is not None or not gpu_wheel_available():
        return TORCH_CPU, problem or f"no CUDA build for {platform.system()} {platform.machine()}"
    return TORCH_CUDA, "an NVIDIA GPU driver is present"


def companions_plan(distributions: Iterable[str], target: Path | None = None) -> InstallPlan | None:
    """The pinned companions among ``distributions`` (:mod:`.companions`), without dependencies (numpy stays
    QGIS's), from pip's own index, into ``target`` (default :func:`~.folders.torch_dir`); ``None`` when there are
    none."""
    pins = {**companions.PINS, "protobuf": runtime_pins()["protobuf"]}
    names = [name for name in distributions if name in pins]
    if not names:
        return None
    return InstallPlan(tuple(f"{name}=={pins[name]}" for name in names),
                       sum(companions.DOWNLOAD_MB.get(name, DOWNLOAD_MB.get(name, 0.0)) for name in names),
                       target or torch_dir())


def torch_plan(build: str | None = None, target: Path | None = None,
               missing: Iterable[str] = ("torch",)) -> InstallPlan:
    """What fine-tuning lacks (``missing`` distributions: ``status.torch_status(target).missing``): PyTorch
    :data:`TORCH_VERSION` (``build``: ``"cpu"`` or ``"cuda"``, default :func:`recommended_torch`) with its
    dependencies from PyTorch's index, then the companions (:func:`companions_plan`), into
    :func:`~.folders.torch_dir`.

    Raises:
        ValueError: an unknown build, or nothing to install.
    """
    build = build or recommended_torch()[0]
    if build not in TORCH_INDEX:
        raise ValueError(f"Unknown PyTorch build {build!r}; choose one of: {', '.join(TORCH_INDEX)}.")
    target = target or torch_dir()
    missing = tuple(missing)
    rest = companions_plan(missing, target)
    if "torch" not in missing:
        if rest is None:
            raise ValueError("Nothing to install: PyTorch and what fine-tuning imports are all there.")
        return rest
    download, disk = TORCH_MB[build]
    return InstallPlan((f"torch=={TORCH_VERSION}",), download, target, pip_options=("--index-url", TORCH_INDEX[build]),
                       disk_mb=disk, then=rest)


def install_command(plan_or_requirements: InstallPlan | tuple[str, ...] | list[str],
                    target: Path | None = None) -> list[str]:
    """The pip command of a plan (or of pinned ``requirements`` into ``target``, default :func:`deps_dir`): QGIS's
    own interpreter, wheels only, into the plan's folder; the runtime's without dependencies (numpy stays QGIS's).
    pip's own settings apply (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, a proxy...).

    Raises:
        InterpreterNotFoundError: QGIS's interpreter cannot be found.
    """
    plan = plan_or_requirements
    if not isinstance(plan, InstallPlan):
        plan = InstallPlan(tuple(plan), 0.0, target or deps_dir())
    return [
        python_executable(), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
        *plan.pip_options, "--only-binary=:all:", "--upgrade", "--target", str(plan.target), *plan.requirements,
    ]


def install_commands(plan: InstallPlan) -> list[list[str]]:
    """The pip commands of every step of ``plan``, to run in turn (:func:`install_command` each)."""
    return [install_command(step) for step in plan.steps()]
