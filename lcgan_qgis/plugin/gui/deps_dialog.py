"""One-click installation of missing runtime packages, with pip's log visible while it runs.

pip runs in a ``QProcess`` (QGIS stays responsive) with the pinned, ``--no-deps`` command of
:func:`lcgan_qgis.deps.install_command`, into the plugin-local folder; numpy is never touched.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from qgis.core import Qgis
from qgis.PyQt.QtCore import QProcess
from qgis.PyQt.QtGui import QFontDatabase
from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from ...core.deps import (
    DependencyStatus,
    check_openvino,
    check_runtime,
    deps_dir,
    install_command,
    prepare_target,
    provider_summary,
)


class InstallDialog(QDialog):
    """Shows the pip command and its output; re-checks the runtime when pip ends."""

    def __init__(self, requirements: tuple[str, ...], parent: QWidget | None = None,
                 target: Path | None = None, optional: bool = False) -> None:
        super().__init__(parent)
        self.optional = optional  # an optional speed-up (OpenVINO): re-checked with check_openvino
        self.setWindowTitle("lcgan: install Python packages")
        self.resize(760, 420)
        self.requirements = requirements
        self.target = target or deps_dir()
        self.command = install_command(requirements, self.target)
        self.exit_code: int | None = None
        self.status: DependencyStatus | None = None
        layout = QVBoxLayout(self)
        self.summary = QLabel(
            f"Installing {', '.join(requirements)} into the plugin's own folder (numpy stays as it is)."
        )
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        layout.addWidget(self.log)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read_output)
        self.process.finished.connect(self._finished)

    def start(self) -> None:
        """Run pip (asynchronously)."""
        prepare_target(self.target)
        self.log.appendPlainText("$ " + " ".join(shlex.quote(part) for part in self.command))
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setEnabled(False)
        self.process.start(self.command[0], self.command[1:])

    def _read_output(self) -> None:
        data = bytes(self.process.readAllStandardOutput()).decode("utf-8", errors="replace")
        self.log.appendPlainText(data.rstrip("\n"))

    def _finished(self, exit_code: int, _status: Any = None) -> None:
        self.exit_code = exit_code
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setEnabled(True)
        if self.optional:
            openvino = check_openvino()
            text = openvino.summary if exit_code == 0 else f"pip exited with code {exit_code}. {openvino.summary}"
            self.summary.setText(text)
            self.log.appendPlainText(text)
            return
        self.status = check_runtime()
        if exit_code == 0 and self.status.ok:
            text = (f"Done: onnxruntime {self.status.onnxruntime_version} with numpy {self.status.numpy_version}. "
                    f"{provider_summary()}")
        else:
            text = f"pip exited with code {exit_code}. {self.status.problem}".strip()
        self.summary.setText(text)
        self.log.appendPlainText(text)


def offer_install(iface: Any, status: DependencyStatus, target: Path | None = None) -> QPushButton | None:
    """Put the problem in QGIS's message bar, with an Install button when pip can fix it (returned)."""
    bar = iface.messageBar()
    widget = bar.createMessage("lcgan", status.problem)
    button = None
    if status.missing:
        button = QPushButton("Install " + ", ".join(status.missing))

        def install() -> None:
            dialog = InstallDialog(status.missing, iface.mainWindow(), target)
            dialog.show()
            dialog.start()
            offer_install.dialog = dialog  # keep it alive while pip runs

        button.clicked.connect(install)
        widget.layout().addWidget(button)
    bar.pushWidget(widget, Qgis.MessageLevel.Warning)
    return button


def install_openvino(parent: QWidget | None = None, target: Path | None = None) -> InstallDialog | None:
    """Start installing the optional OpenVINO backend (pinned, into the plugin's folder); None when it runs already."""
    status = check_openvino()
    if status.installed:
        return None
    dialog = InstallDialog(status.requirements, parent, target, optional=True)
    dialog.show()
    dialog.start()
    return dialog
