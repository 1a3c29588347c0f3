"""Inference that can be stopped: a cancel (Ctrl-C, SIGTERM, QGIS's Cancel) or a time limit ends a batch that the
backend is still running, instead of waiting for it.

:class:`Watchdog` runs each batch in a thread of its own while the caller's thread keeps polling ``is_canceled``
(so signal handlers and QGIS's cancel take effect within :data:`POLL_S`), and stops the batch when the run is
cancelled or the batch overruns its time limit. The limit comes from the speed measured on this run: the median
seconds per window so far, times :data:`SLOWDOWN_FACTOR`, times the windows in the batch, at least
:data:`MIN_LIMIT_S`; before any batch has finished (the first one also loads kernels or compiles), it is
:data:`FIRST_BATCH_LIMIT_S`. onnxruntime stops a running session through ``RunOptions.terminate`` (checked between
nodes, also inside ``Loop`` bodies, so a model looping 2^62 times stops at once); another backend's batch is left to
finish in its daemon thread while the run ends without it.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DeviceError

log = logging.getLogger(__name__)

POLL_S = 0.05
FIRST_BATCH_LIMIT_S = 900.0  # no speed measured yet: the first batch may also compile (OpenVINO) or warm up (CUDA)
MIN_LIMIT_S = 60.0
SLOWDOWN_FACTOR = 25.0  # a batch this many times slower than the run's median is hung (a shared machine: 2-3x)
STOP_WAIT_S = 5.0  # how long a terminated batch may take to return


class InferenceTimeoutError(DeviceError):
    """A batch ran past its time limit (the model is hung, or the machine far slower than measured)."""


class _Terminable:
    """An onnxruntime session whose runs pass ``RunOptions`` that another thread can set to terminate."""

    def __init__(self, session: Any, options: Any) -> None:
        self._session, self._options = session, options

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._session.run(names, feeds, self._options)


def _terminable(model: Any) -> tuple[Any, Any]:
    """(a model whose runs can be terminated, its RunOptions); the model itself and None where that is impossible
    (another backend, or an object that is not lcgan's ``Model``)."""
    import onnxruntime as ort

    session = getattr(model, "session", None)
    if not dataclasses.is_dataclass(model) or not isinstance(session, ort.InferenceSession):
        return model, None
    options = ort.RunOptions()
    options.log_severity_level = 4  # (a terminated run is not an error to print)
    return dataclasses.replace(model, session=_Terminable(session, options)), options


class Watchdog:
    """Runs ``model``'s batches where ``is_canceled`` and a time limit can stop them (see the module).

    Args:
        model: a loaded :class:`~lcgan_qgis.core.model.runtime.Model` (anything with ``run(batch)``).
        is_canceled: polled every :data:`POLL_S` while a batch runs.
    """

    def __init__(self, model: Any, is_canceled: Callable[[], bool]) -> None:
        self.model = model
        self.is_canceled = is_canceled
        self.per_window_s: list[float] = []

    def limit_s(self, windows: int) -> float:
        """The time limit of a batch of ``windows`` windows."""
        if not self.per_window_s:
            return FIRST_BATCH_LIMIT_S
        return max(MIN_LIMIT_S, SLOWDOWN_FACTOR * statistics.median(self.per_window_s[-50:]) * max(windows, 1))

    def run(self, batch: np.ndarray) -> np.ndarray | None:
        """The model's output for ``batch``; None when the run was cancelled while it ran.

        Raises:
            InferenceTimeoutError: the batch overran its limit (the message names the model, the limit and the speed).
            LcganError: what ``model.run`` raises (a broken output, a backend failure).
        """
        model, options = _terminable(self.model)
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["y"] = model.run(batch)
            except BaseException as exc:  # (handed to the caller's thread)
                box["error"] = exc
            finally:
                done.set()

        limit = self.limit_s(len(batch))
        started = time.monotonic()
        thread = threading.Thread(target=work, name="lcgan-inference", daemon=True)
        thread.start()
        while not done.wait(POLL_S):
            if self.is_canceled():
                self._stop(options, done)
                return None
            if time.monotonic() - started > limit:
                self._stop(options, done)
                raise InferenceTimeoutError(self._timeout_message(len(batch), limit))
        if "error" in box:
            raise box["error"]
        self.per_window_s.append((time.monotonic() - started) / max(len(batch), 1))
        return box["y"]

    def _stop(self, options: Any, done: threading.Event) -> None:
        if options is not None:
            options.terminate = True
        if not done.wait(STOP_WAIT_S if options is not None else 0.0):
            log.warning("the stopped batch of %s is still running in the background; it is ignored",
                        getattr(self.model, "path", "the model"))

    def _timeout_message(self, windows: int, limit: float) -> str:
        name = getattr(self.model, "path", "the model")
        speed = (f"this run's median is {statistics.median(self.per_window_s):.2f} s per window"
                 if self.per_window_s else "no window had finished yet")
        return (f"{name}: a batch of {windows} window(s) ran for more than {limit:.0f} s ({speed}); the model seems to "
                "hang (a loop that does not end?) and was stopped; nothing was written. Check the model with "
                "'python -m lcgan_qgis info', or try a smaller --window or --batch on a busy machine.")
