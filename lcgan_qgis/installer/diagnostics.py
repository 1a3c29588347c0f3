"""The "Copy diagnostics" report: what a bug report about lcgan's runtime needs, as plain ``key: value`` lines.

Python, numpy, GDAL and onnxruntime versions and where they were imported from, the execution providers onnxruntime
offers and the one a run would use, whether the optional OpenVINO backend runs, the NVIDIA driver, and the
plugin's own package folders. The plugin adds the QGIS version. QGIS-free; onnxruntime is imported only to report
on it (its absence is reported, not raised).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping

from ..core.resources import plugin_version
from .folders import PLUGIN_DIR, deps_dir, torch_dir
from .interpreter import InterpreterNotFoundError, python_executable
from .plan import nvidia_driver_version, recommended_variant
from .status import check_openvino, check_runtime, provider_summary


def _module_line(name: str) -> str:
    module = sys.modules.get(name)
    if module is None:
        return "not imported"
    return f"{getattr(module, '__version__', '?')} ({getattr(module, '__file__', '?')})"


def collect(extra: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """``(key, value)`` rows of the report; ``extra`` rows (e.g. the QGIS version) come first."""
    rows = list((extra or {}).items())
    rows.append(("lcgan plugin", f"{plugin_version()} ({PLUGIN_DIR})"))
    rows.append(("Python", f"{platform.python_version()} ({sys.executable})"))
    try:
        rows.append(("pip runs with", python_executable()))
    except InterpreterNotFoundError as exc:
        rows.append(("pip runs with", str(exc)))
    rows.append(("Platform", f"{platform.system()} {platform.release()} {platform.machine()}"))
    status = check_runtime()
    rows.append(("numpy", _module_line("numpy")))
    try:
        from osgeo import gdal

        rows.append(("GDAL", gdal.__version__))
    except ImportError as exc:
        rows.append(("GDAL", f"not importable: {exc}"))
    if status.ok:
        import onnxruntime

        rows.append(("onnxruntime", _module_line("onnxruntime")))
        rows.append(("Execution providers available", ", ".join(onnxruntime.get_available_providers())))
        rows.append(("Execution provider chosen (auto)", provider_summary("auto")))
    else:
        rows.append(("onnxruntime", f"not usable: {status.problem} {status.details}".strip()))
    openvino = check_openvino()
    rows.append(("OpenVINO (optional)", openvino.summary if openvino.ok else f"not usable: {openvino.details}"))
    driver = nvidia_driver_version()
    rows.append(("NVIDIA driver", driver or "none found"))
    variant, why = recommended_variant()
    rows.append(("Installer would choose", f"{variant}: {why}"))
    folder = deps_dir()
    content = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    on_path = str(folder) in sys.path
    rows.append(("Plugin package folder", f"{folder} ({'exists' if folder.is_dir() else 'absent'}, "
                 f"{'on' if on_path else 'not on'} sys.path)"))
    rows.append(("Folder contents", ", ".join(content) if content else "-"))
    rows.append(("PyTorch folder (fine-tuning)", f"{torch_dir()} ({'exists' if torch_dir().is_dir() else 'absent'})"))
    return rows


def report(extra: Mapping[str, str] | None = None) -> str:
    """The report as text, one ``key: value`` line per row."""
    return "\n".join(f"{key}: {value}" for key, value in collect(extra))

