"""The background task the dock starts: one translation in a ``QgsTask``, so QGIS stays responsive.

The task owns a reader over a cloned provider (made on the main thread before the task starts), runs
:func:`lcgan_qgis.core.run.job.run_translation` in ``run()`` on a worker thread with the task's progress and cancel,
and hands the outcome back on the main thread through ``finished()`` to a callback (the dock adds and styles the layer
there).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from qgis.core import Qgis, QgsMessageLog, QgsTask

from ..core.errors import LcganError
from ..core.run.job import JobResult, TranslationRequest, run_translation
from .qgis_reader import ProviderReader

LOG = logging.getLogger(__name__)
MESSAGE_TAG = "lcgan"


@dataclass(frozen=True)
class TaskOutcome:
    """What a finished task reports: exactly one of ``job`` (success), ``canceled`` or ``error`` applies."""

    request: TranslationRequest
    input_name: str
    job: JobResult | None = None
    canceled: bool = False
    error: str = ""
    messages: tuple[str, ...] = ()


class TranslateTask(QgsTask):
    """Runs one translation; ``on_done`` receives a :class:`TaskOutcome` on the main thread.

    Args:
        request: the parameters (the dock builds it).
        reader: the input reader; the task owns and closes it.
        on_done: called once with the outcome, on the main thread.
    """

    def __init__(self, request: TranslationRequest, reader: ProviderReader,
                 on_done: Callable[[TaskOutcome], None] | None = None) -> None:
        direction = request.model.direction.value if request.model.direction is not None else "model"
        super().__init__(f"lcgan: {reader.info.name} ({direction})", QgsTask.Flag.CanCancel)
        self.request = request
        self._reader: ProviderReader | None = reader
        self._input_name = reader.info.name
        self._on_done = on_done
        self._job: JobResult | None = None
        self._error = ""
        self._messages: list[str] = []
        self.outcome: TaskOutcome | None = None

    def _log(self, message: str) -> None:
        self._messages.append(message)
        QgsMessageLog.logMessage(message, MESSAGE_TAG, Qgis.MessageLevel.Info)

    def run(self) -> bool:
        """Worker thread: translate; ``True`` only when a result was written."""
        reader = self._reader
        if reader is None:
            self._error = "The task has no input (it was already run)."
            return False
        try:
            self._job = run_translation(
                self.request, reader, progress=lambda f: self.setProgress(100.0 * f),
                is_canceled=self.isCanceled, log=self._log,
            )
        except LcganError as exc:
            self._error = str(exc)
            return False
        except ImportError as exc:
            self._error = (f"onnxruntime cannot be imported ({exc}). Install it with the Install button in QGIS's "
                           "message bar (shown when QGIS starts) or in the lcgan dock.")
            return False
        except Exception as exc:  # a bug must not take QGIS down: report it with its traceback in the log
            self._error = f"Unexpected error: {exc!r}"
            QgsMessageLog.logMessage(traceback.format_exc(), MESSAGE_TAG, Qgis.MessageLevel.Critical)
            return False
        return not self._job.canceled

    def finished(self, result: bool) -> None:
        """Main thread: release the reader (its provider clone belongs to this thread), build the outcome and hand
        it to ``on_done``."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        canceled = self.isCanceled() or (self._job is not None and self._job.canceled)
        self.outcome = TaskOutcome(
            request=self.request,
            input_name=self._input_name,
            job=self._job if result else None,
            canceled=canceled and not result,
            error="" if result or canceled else (self._error or "The translation failed."),
            messages=tuple(self._messages),
        )
        if self._on_done is not None:
            self._on_done(self.outcome)
