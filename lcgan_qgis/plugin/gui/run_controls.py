"""The row a dock section that runs something ends with: a start button beside Cancel, a progress bar and a status
line, built once for every section (the scenario panel, the fine-tuning panel)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qgis.PyQt.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton


@dataclass(frozen=True)
class RunControls:
    """The widgets of :func:`add_run_controls`."""

    start: QPushButton
    cancel: QPushButton
    progress: QProgressBar
    status: QLabel


def add_run_controls(form: QFormLayout, start_text: str, on_start: Callable[[], object],
                     on_cancel: Callable[[], object]) -> RunControls:
    """Add the start and Cancel buttons (Cancel disabled until a run starts), a progress bar (hidden until a run
    reports progress) and a word-wrapped status line to ``form``, the buttons connected to ``on_start`` and
    ``on_cancel``."""
    start, cancel = QPushButton(start_text), QPushButton("Cancel")
    cancel.setEnabled(False)
    buttons = QHBoxLayout()
    buttons.addWidget(start)
    buttons.addWidget(cancel)
    form.addRow(buttons)
    progress, status = QProgressBar(), QLabel("")
    def show_progress(*_args: object) -> None:  # (an empty bar before any run reads as a broken field)
        progress.setVisible(progress.value() >= progress.minimum())  # (-1 until the first progress)

    show_progress()
    progress.valueChanged.connect(show_progress)
    section = form.parentWidget()  # (unfolding a QgsCollapsibleGroupBox shows every child again)
    if hasattr(section, "collapsedStateChanged"):
        section.collapsedStateChanged.connect(show_progress)
    status.setWordWrap(True)
    form.addRow(progress)
    form.addRow(status)
    start.clicked.connect(lambda _checked=False: on_start())
    cancel.clicked.connect(lambda _checked=False: on_cancel())
    return RunControls(start, cancel, progress, status)
