"""The OpenVINO backend: our ONNX files read and compiled by OpenVINO's CPU plugin, behind onnxruntime's ``run``.

OpenVINO is optional (the plugin works without it) and imported lazily, only here. :class:`OpenVinoSession` has
the one method of ``onnxruntime.InferenceSession`` that :class:`~lcgan_qgis.core.model.runtime.Model` uses
(``run(output_names, feeds)``), so the model, the engine and the outputs do not change.

Choices (their measurements, with the commands that made them: docs/engine.md, "Backends"):

* every input shape gets its own statically shaped compiled model (the engine runs one window shape, so this is
  one compile per run): a dynamic-shape model runs slower;
* the inference precision is always set explicitly: OpenVINO's CPU plugin defaults to bf16 on CPUs with BF16, so
  "fp32" would silently not be fp32. int8 (the QDQ sibling) runs its float layers in bf16 where the CPU has it
  (faster than f32 there; its fidelity gate is measured in exactly that configuration);
* ``LATENCY`` hint, one stream, ``threads`` inference threads, no core pinning (the CPU is shared with QGIS);
* compiled models are cached in ``cache_dir`` (OpenVINO's own model cache), so a second run skips the compile; a
  cache folder that cannot be written is not fatal (the run compiles without a cache and says so once).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .contract import INPUT_NAME

log = logging.getLogger(__name__)

DEVICE = "CPU"
#: OpenVINO's cache keeps one blob per model, precision and input shape (about the size of the model file), and the
#: engine's window shape follows the raster's size, so the oldest blobs go beyond this.
CACHE_BUDGET_BYTES = 1 << 30
#: OpenVINO's precision hint per lcgan precision (int8: the hint for the float layers around the int8 ones).
_HINTS = {"fp32": "f32", "bf16": "bf16"}


@dataclass(frozen=True)
class OpenVinoStatus:
    """Whether OpenVINO runs here: ``missing`` is None when it does, else the one-line reason."""

    missing: str | None
    version: str = ""
    device_name: str = ""
    capabilities: tuple[str, ...] = ()

    @property
    def bf16(self) -> bool:
        return "BF16" in self.capabilities


@lru_cache(maxsize=1)
def _core() -> Any:
    import openvino

    return openvino.Core()


@lru_cache(maxsize=1)
def openvino_status() -> OpenVinoStatus:
    """Import OpenVINO and ask its CPU plugin what it offers (cached per process)."""
    try:
        import openvino
    except ImportError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return OpenVinoStatus(f"the openvino package is not installed ({first})")
    try:
        core = _core()
        if DEVICE not in core.available_devices:
            return OpenVinoStatus(f"OpenVINO {openvino.__version__} finds no CPU device", openvino.__version__)
        capabilities = tuple(str(c) for c in core.get_property(DEVICE, "OPTIMIZATION_CAPABILITIES"))
        name = str(core.get_property(DEVICE, "FULL_DEVICE_NAME"))
    except Exception as exc:  # (OpenVINO raises RuntimeError subclasses of its own)
        return OpenVinoStatus(f"OpenVINO failed to start ({_first_line(exc)})")
    return OpenVinoStatus(None, openvino.__version__.split("-")[0], name, capabilities)


_BOILERPLATE = re.compile(r"^(Exception from \S+|Check '.*' failed at \S+|Summary:)\s*$")


def _first_line(exc: BaseException) -> str:
    """OpenVINO's message in one line, without its source-location lines (``Exception from src/...:84:``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not _BOILERPLATE.match(line)]
    return " ".join(useful or lines)[:300] or type(exc).__name__


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lcgan/openvino`` (``~/.cache/lcgan/openvino``); the plugin passes its settings folder."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lcgan" / "openvino"


def usable_cache_dir(path: Path) -> tuple[Path | None, str | None]:
    """``(path, None)`` when the folder exists (or can be made) and takes a file, else ``(None, why not)``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".lcgan-probe-"):
            pass
    except OSError as exc:
        return None, (f"OpenVINO's model cache {path} is not writable ({exc.strerror or exc}); compiling without "
                      "a cache (the next run compiles again).")
    prune_cache(path)
    return path, None


def prune_cache(path: Path, budget_bytes: int = CACHE_BUDGET_BYTES) -> int:
    """Delete the oldest cache blobs until the folder holds at most ``budget_bytes``; returns how many went."""
    try:
        blobs = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in path.glob("*.blob"))
    except OSError:
        return 0
    total, removed = sum(size for _t, size, _p in blobs), 0
    for _mtime, size, blob in blobs:
        if total <= budget_bytes:
            break
        try:
            blob.unlink()
        except OSError:
            continue
        total, removed = total - size, removed + 1
    return removed


class OpenVinoError(RuntimeError):
    """OpenVINO could not read or compile a model (the runtime falls back to the next path with the reason)."""


class OpenVinoSession:
    """A model read and compiled by OpenVINO, run like an ``onnxruntime.InferenceSession``.

    Args:
        path: the ONNX file.
        precision: ``fp32``, ``bf16`` or ``int8`` (int8: ``path`` is the QDQ sibling).
        threads: inference threads.
        cache_dir: OpenVINO's model cache (None: no cache).

    Raises:
        OpenVinoError: the file cannot be read or the model cannot be compiled (the reason in one line).
    """

    def __init__(self, path: Path, precision: str, threads: int, cache_dir: Path | None) -> None:
        status = openvino_status()
        self.path = path
        self.precision = precision
        hint = _HINTS.get(precision, "bf16" if status.bf16 else "f32")
        self.float_precision = {"f32": "fp32", "bf16": "bf16"}[hint]
        self.config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY",
                                       "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": threads,
                                       "ENABLE_CPU_PINNING": False}
        if cache_dir is not None:
            self.config["CACHE_DIR"] = str(cache_dir)
        self.compile_seconds = 0.0
        self._lock = threading.Lock()
        self._requests: dict[tuple[int, ...], Any] = {}
        started = time.perf_counter()
        try:
            self.model = _core().read_model(str(path))
        except Exception as exc:  # (OpenVINO's reader raises RuntimeError with the parser's message)
            raise OpenVinoError(f"OpenVINO cannot read {path.name}: {_first_line(exc)}") from None
        self.read_seconds = time.perf_counter() - started
        shape = (1, self.inputs()[0][1][1], 64, 64)  # compiling one small shape proves the model compiles
        self._request(shape)

    # -- what Model needs from a session ----------------------------------------------------------------------
    def metadata(self) -> dict[str, str]:
        """The ONNX file's metadata_props (OpenVINO keeps them under the model's ``framework`` rt_info)."""
        info = self.model.get_rt_info()
        if "framework" not in info:
            return {}
        framework = info["framework"]
        return {str(key): framework[key].astype(str) for key in framework}

    def inputs(self) -> list[tuple[str, list[Any]]]:
        return [(port.get_any_name(), _dims(port)) for port in self.model.inputs]

    def outputs(self) -> list[tuple[str, list[Any]]]:
        return [(port.get_any_name(), _dims(port)) for port in self.model.outputs]

    def element_types(self) -> list[tuple[str, str]]:
        """``(kind, type)`` of the first input and output, e.g. ``("input", "f32")``."""
        return [("input", self.model.inputs[0].get_element_type().get_type_name()),
                ("output", self.model.outputs[0].get_element_type().get_type_name())]

    def run(self, output_names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch (onnxruntime's signature; one input, one output)."""
        x = feeds[INPUT_NAME]
        request = self._request(tuple(x.shape))
        result = request.infer({0: x})
        return [np.asarray(result[0])]

    # -- compiled models per input shape ------------------------------------------------------------------
    def _request(self, shape: tuple[int, ...]) -> Any:
        with self._lock:
            request = self._requests.get(shape)
            if request is not None:
                return request
            started = time.perf_counter()
            model = self.model.clone()
            try:
                model.reshape({model.inputs[0]: list(shape)})
                compiled = _core().compile_model(model, DEVICE, self.config)
            except Exception as exc:  # (OpenVINO raises RuntimeError / GeneralFailure with the plugin's message)
                raise OpenVinoError(f"OpenVINO cannot compile {self.path.name} for input {list(shape)}: "
                                    f"{_first_line(exc)}") from None
            seconds = time.perf_counter() - started
            self.compile_seconds += seconds
            log.info("OpenVINO compiled %s (%s) for %s in %.2f s", self.path.name, self.precision, shape, seconds)
            request = compiled.create_infer_request()
            self._requests[shape] = request
            return request


def _dims(port: Any) -> list[Any]:
    """A port's shape as onnxruntime reports it: static dims as ints, dynamic ones as strings."""
    return [d.get_length() if d.is_static else str(d) for d in port.get_partial_shape()]
