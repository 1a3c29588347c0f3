"""Model runtime: load an lcgan ONNX model, validate its contract, choose the execution provider, run batches.

One :class:`Model` owns one session: an ``onnxruntime.InferenceSession``, or an
:class:`~lcgan_qgis.core.model.openvino_backend.OpenVinoSession` on the CPU when OpenVINO is installed and the model's
fidelity record lets ``auto`` use it (backend and precision choice: :mod:`lcgan_qgis.core.model.precision`). Provider
choice (``device``):

* ``"cpu"``: the CPU execution provider;
* ``"cuda"``: the CUDA execution provider, or :class:`DeviceError` with the reason when it cannot run here;
* ``"auto"``: CUDA when it really works, else CPU.

``onnxruntime.get_available_providers()`` lists CUDA whenever onnxruntime-gpu is installed, GPU or not, and a
session asked for CUDA without one logs an error and silently falls back to CPU. We therefore probe: first the
libraries CUDA needs (cheap, gives a readable reason), then a tiny session with onnxruntime's log quietened, checking
which provider the session really got.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..choices import BACKEND_LABELS, DEVICES, PRECISIONS, check_choice
from ..errors import ContractError, DeviceError, ModelFileError
from .contract import INPUT_NAME, OUTPUT_NAME, ModelContract
from .drivers import cuda_driver_problem
from .opset import newer_opset_reason
from .precision import (
    ONNXRUNTIME,
    OPENVINO,
    Capabilities,
    ExecutionPath,
    int8_sibling,
    plan_paths,
    read_record,
)

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# A 65-byte ONNX model (y = Relu(x), x: float[1]) used only to ask onnxruntime whether CUDA really initialises.
_PROBE_MODEL = base64.b64decode(
    "CAg6NwoMCgF4EgF5IgRSZWx1EgVwcm9iZVoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEBE="
)
_ORT_SEVERITY_DEFAULT = 2  # onnxruntime's default logger severity (warning)
_ORT_SEVERITY_QUIET = 4  # fatal only
_log_lock = threading.Lock()


def default_threads() -> int:
    """CPU cores this process may use (the intra-op thread count used unless told otherwise)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def _quiet_onnxruntime() -> Iterator[None]:
    """Raise onnxruntime's default log severity to fatal for the duration (the CUDA fallback logs at error)."""
    with _log_lock:
        ort.set_default_logger_severity(_ORT_SEVERITY_QUIET)
        try:
            yield
        finally:
            ort.set_default_logger_severity(_ORT_SEVERITY_DEFAULT)


def _missing_cuda_library() -> str | None:
    """Why the NVIDIA driver library cannot be loaded (one line), or None when it loads."""
    return cuda_driver_problem()


@lru_cache(maxsize=1)
def _probe_cuda() -> str | None:
    """None when a CUDA session really runs here, else the one-line reason why not (cached per process)."""
    if CUDA not in ort.get_available_providers():
        return f"this onnxruntime {ort.__version__} has no CUDA provider; install onnxruntime-gpu for a GPU"
    missing = _missing_cuda_library()
    if missing:
        return missing
    return probe_cuda_session()


def probe_cuda_session() -> str | None:
    """Open a tiny session asking for CUDA with onnxruntime's log quietened; None when CUDA really runs it."""
    options = ort.SessionOptions()
    options.log_severity_level = _ORT_SEVERITY_QUIET
    try:
        with _quiet_onnxruntime():
            session = ort.InferenceSession(_PROBE_MODEL, options, providers=[CUDA, CPU])
    except Exception as exc:  # (onnxruntime raises plain RuntimeError/Fail subclasses)
        return f"the CUDA provider failed to start: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if session.get_providers()[0] != CUDA:
        return (
            "the CUDA provider could not load its libraries: onnxruntime-gpu "
            f"{ort.__version__} needs CUDA and cuDNN 9 matching its build"
        )
    return None


def describe_providers(device: str = "auto") -> tuple[str, str]:
    """Which execution provider a model loaded with ``device`` would run on, and why (one line).

    Raises:
        DeviceError: on an unknown ``device``, or ``"cuda"`` when CUDA cannot run here (the reason is given).
    """
    check_choice("device", device, DEVICES)
    if device == "cpu":
        return CPU, "CPU (requested)"
    reason = _probe_cuda()
    if reason is None:
        return CUDA, "CUDA GPU (" + ("requested" if device == "cuda" else "found by auto") + ")"
    if device == "cuda":
        raise DeviceError(f"CUDA was requested but cannot be used: {reason}. Use device 'cpu' or 'auto'.")
    return CPU, f"CPU ({reason})"


@dataclass
class Model:
    """A loaded, validated model: the one owner of its ``InferenceSession``. Use :func:`load_model`."""

    path: Path
    contract: ModelContract
    provider: str
    provider_reason: str
    threads: int
    session: ort.InferenceSession  # or an OpenVinoSession (the same ``run``)
    precision: str = "fp32"  # "fp32", "bf16" or "int8" (see load_model's ``precision``)
    backend: str = ONNXRUNTIME  # "onnxruntime" or "openvino"
    notes: tuple[str, ...] = ()  # one-line notes on the choice (fallbacks, gates), shown with the run's messages

    @property
    def compile_seconds(self) -> float:
        """OpenVINO: seconds spent compiling so far (near 0 when its model cache had the model); 0 otherwise."""
        return float(getattr(self.session, "compile_seconds", 0.0))

    @property
    def summary(self) -> str:
        """One line: backend, precision, threads and device, e.g. ``OpenVINO 2026.4.1 int8 (float layers bf16),
        2 threads, on CPU (no NVIDIA GPU driver found ...)``."""
        if self.backend == OPENVINO:
            from .openvino_backend import openvino_status

            extra = getattr(self.session, "float_precision", "")
            detail = f" (float layers {extra})" if self.precision == "int8" and extra else ""
            return (f"OpenVINO {openvino_status().version} {self.precision}{detail}, {self.threads} threads, on "
                    f"{self.provider_reason}")
        return f"onnxruntime {ort.__version__} {self.precision}, {self.threads} threads, on {self.provider_reason}"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run a float32 ``(N, C, H, W)`` batch; returns the float32 ``(N, C_out, H, W)`` output.

        Raises:
            ContractError: when the batch does not have the model's channels or H/W are not size multiples.
            DeviceError: when onnxruntime fails while running (out of memory, provider fault).
            ModelFileError: when the output breaks the contract (shape, NaN/Inf, range): the model is broken.
        """
        if batch.ndim != 4 or batch.shape[1] != self.contract.in_channels:
            raise ContractError(
                f"{self.path}: expected a (N, {self.contract.in_channels}, H, W) batch, got shape {batch.shape}."
            )
        multiple = self.contract.size_multiple_px
        if batch.shape[2] % multiple or batch.shape[3] % multiple:
            raise ContractError(f"{self.path}: batch H and W must be multiples of {multiple}, got {batch.shape}.")
        feed = np.ascontiguousarray(batch, dtype=np.float32)
        try:
            output = self.session.run([OUTPUT_NAME], {INPUT_NAME: feed})[0]
        except Exception as exc:  # (onnxruntime's errors share no useful base class)
            raise DeviceError(
                f"{self.path}: inference on {self.provider} failed for a batch of shape {feed.shape}: {exc}"
            ) from exc
        self.contract.check_output(feed.shape, output, str(self.path))
        return output

    def close(self) -> None:
        """Release the session (the object must not be used afterwards)."""
        self.session = None  # type: ignore[assignment]

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def session_options(threads: int) -> ort.SessionOptions:
    """The session options every lcgan session uses: full graph optimisation, ``threads`` intra-op threads."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # No busy-waiting between operators: on a CPU shared with QGIS (or other jobs) spinning threads steal cycles;
    # measured no slower for the full generator, and ~1.5x faster for small models on a busy machine (bench.json).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def load_model(path: str | Path, device: str = "auto", threads: int | None = None,
               precision: str = "auto", backend: str = "auto", cache_dir: str | Path | None = None) -> Model:
    """Load and validate an lcgan ONNX model.

    Args:
        path: the ``.onnx`` file (float32).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: intra-op threads (None: every core this process may use).
        precision: ``"auto"`` (the fastest path that passes the model's fidelity gates, see
            :mod:`~lcgan_qgis.core.model.precision`; the fp32 reference without a fidelity record), ``"fp32"``,
            ``"bf16"`` (OpenVINO on a CPU with BF16) or ``"int8"`` (the sibling ``M.int8.onnx``, which must exist).
        backend: ``"auto"`` (OpenVINO on the CPU where installed and allowed, else onnxruntime), ``"onnxruntime"``
            or ``"openvino"``.
        cache_dir: OpenVINO's compiled-model cache (None: :func:`~.openvino_backend.default_cache_dir`); a folder
            that cannot be written only costs the cache.

    Returns:
        The loaded :class:`Model`; ``model.path`` is the file really loaded, ``model.backend`` and
        ``model.precision`` say what runs, ``model.notes`` why (fallbacks, gates).

    Raises:
        ModelFileError: missing, empty, unreadable, truncated or non-ONNX file (names the path).
        ContractError: missing or invalid lcgan metadata, a graph that breaks the contract, or an int8 sibling
            whose contract differs from its float model's.
        DeviceError: unknown device, precision or backend, ``"cuda"`` that cannot be used here, or an explicit
            precision/backend this machine cannot run (with the reason).
    """
    path = Path(path)
    check_choice("precision", precision, PRECISIONS)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise DeviceError(f"threads must be a positive integer, got {threads!r}.")
    if backend == OPENVINO and device == "auto":
        provider, reason = CPU, "CPU (OpenVINO requested)"
    else:
        provider, reason = describe_providers(device)
    n_threads = threads or default_threads()
    sibling = int8_sibling(path)
    status = None
    if provider == CPU and backend != ONNXRUNTIME:
        from .openvino_backend import openvino_status

        status = openvino_status()
    caps = Capabilities(on_cuda=provider == CUDA,
                        openvino_missing=status.missing if status else "not used for CUDA or onnxruntime runs",
                        bf16=bool(status and status.bf16), has_int8=sibling.is_file())
    record, record_note = read_record(path) if precision == "auto" and path.is_file() else (None, None)
    paths, notes = plan_paths(precision, backend, caps, record, str(path))
    if record_note:
        notes.insert(0, record_note)
    failures: list[str] = []
    for choice in paths:
        file = sibling if choice.int8_file else path
        if choice.backend == OPENVINO:
            from .openvino_backend import OpenVinoError

            try:
                model = _load_openvino(file, choice, reason, n_threads, cache_dir, notes)
            except OpenVinoError as exc:
                failures.append(f"{choice.label} failed ({exc})")
                continue
        else:
            model = _load_file(file, provider, reason, n_threads, device)
        if choice.int8_file:
            _check_sibling(path, model)
        model.precision = choice.precision
        if failures:
            notes.append("; ".join(failures) + f"; {BACKEND_LABELS[model.backend]} {choice.precision} runs instead.")
        model.notes = tuple(notes)
        for note in model.notes:
            log.info("%s: %s", path.name, note)
        return model
    raise DeviceError(f"Cannot run {path} with precision {precision!r} and backend {backend!r}: "
                      + ("; ".join(failures) if failures else "no such path on this machine") + ".")


def _load_openvino(path: Path, choice: ExecutionPath, reason: str, n_threads: int, cache_dir: str | Path | None,
                   notes: list[str]) -> Model:
    """A :class:`Model` whose session is OpenVINO's (the same file, contract and graph checks as onnxruntime's)."""
    from .openvino_backend import OpenVinoSession, default_cache_dir, usable_cache_dir

    _check_file(path)
    cache, cache_note = usable_cache_dir(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    if cache_note:
        notes.append(cache_note)
    session = OpenVinoSession(path, choice.precision, n_threads, cache)
    contract = ModelContract.from_metadata(session.metadata(), source=str(path))
    contract.check_graph(session.inputs(), session.outputs(), source=str(path))
    for kind, element in session.element_types():
        if element != "f32":
            raise ContractError(f"{path}: the graph's {kind} is {element}; the contract needs float32.")
    log.info("loaded %s (%s) with OpenVINO on CPU: %s", path, choice.precision, reason)
    return Model(path=path, contract=contract, provider="OpenVINO CPU", provider_reason=reason, threads=n_threads,
                 session=session, precision=choice.precision, backend=OPENVINO)


def _check_sibling(path: Path, model: Model) -> None:
    """An int8 sibling must carry the same contract as its float model (except ``extra``) when both exist."""
    if not path.is_file():
        return
    try:
        with _quiet_onnxruntime():
            meta = ort.InferenceSession(str(path), providers=[CPU]).get_modelmeta().custom_metadata_map
    except Exception:  # (the float model is only consulted; an unreadable one is reported by its own load)
        return
    mine = dict(model.contract.to_dict(), extra={})
    theirs = dict(ModelContract.from_metadata(meta, source=str(path)).to_dict(), extra={})
    if mine != theirs:
        raise ContractError(f"{model.path} is not the int8 copy of {path}: their contracts differ. Re-create it with "
                            "`python -m lcgan_qgis quantize` or remove it.")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ModelFileError(f"Model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"Model path is not a file: {path}")
    if path.stat().st_size == 0:
        raise ModelFileError(f"Model file is empty: {path}")


def _load_file(path: Path, provider: str, reason: str, n_threads: int, device: str) -> Model:
    _check_file(path)
    providers = [CUDA, CPU] if provider == CUDA else [CPU]
    try:
        with _quiet_onnxruntime():
            session = ort.InferenceSession(str(path), session_options(n_threads), providers=providers)
    except Exception as exc:  # (onnxruntime raises InvalidProtobuf, Fail, RuntimeError...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        newer = newer_opset_reason(path, str(exc))  # (a valid file from a newer exporter is not "corrupt")
        if newer:
            raise ModelFileError(f"Cannot load model {path}: {newer}") from None
        raise ModelFileError(
            f"Cannot load model {path}: not a valid ONNX model (truncated, corrupt or not ONNX?). onnxruntime: {first}"
        ) from None
    contract = ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map, source=str(path))
    inputs, outputs = session.get_inputs(), session.get_outputs()
    contract.check_graph([(i.name, i.shape) for i in inputs], [(o.name, o.shape) for o in outputs], source=str(path))
    for kind, arg in (("input", inputs[0]), ("output", outputs[0])):
        if arg.type != "tensor(float)":
            raise ContractError(f"{path}: the graph's {kind} is {arg.type}; the contract needs float32.")
    actual = session.get_providers()[0]
    if actual != provider:
        if device == "cuda":
            raise DeviceError(f"CUDA was requested but {path} was placed on {actual}; use device 'cpu' or 'auto'.")
        provider, reason = actual, f"{actual} (CUDA fell back while loading {path.name})"
    precision = str(contract.extra.get("precision", "fp32"))
    log.info("loaded %s (%s) on %s: %s", path, precision, provider, reason)
    return Model(path=path, contract=contract, provider=provider, provider_reason=reason, threads=n_threads,
                 session=session, precision=precision)
