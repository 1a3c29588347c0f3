"""What the runtimes need from the machine, named once for the runtime and the plugin's installer: the NVIDIA driver
library CUDA runs need, and the pip packages of the optional OpenVINO backend."""

from __future__ import annotations

import ctypes
import platform

#: The NVIDIA driver library per ``platform.system()`` (macOS has none).
CUDA_DRIVER_LIBRARIES = {"Linux": "libcuda.so.1", "Windows": "nvcuda.dll"}
#: The optional OpenVINO backend (:mod:`~lcgan_qgis.core.model.openvino_backend`): openvino and its one dependency.
OPENVINO_PACKAGES = ("openvino", "openvino-telemetry")


def cuda_driver_problem() -> str | None:
    """``None`` when the NVIDIA driver library loads, else why not (one line, no parentheses)."""
    library = CUDA_DRIVER_LIBRARIES.get(platform.system())
    if library is None:
        return f"no NVIDIA GPU driver on {platform.system()}"
    try:
        ctypes.CDLL(library)
    except OSError:
        return f"no NVIDIA GPU driver found: {library} cannot be loaded"
    return None
