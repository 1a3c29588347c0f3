"""Installing missing runtime packages from QGIS: a short message-bar entry, then a dialog that says what will be
downloaded (sizes, CPU or GPU wheel), runs pip with its log under "Details", and makes the packages usable in the
running QGIS (or says plainly that a restart is needed). The dock's "Install OpenVINO" opens the same dialog for the
optional backend (:func:`lcgan_qgis.installer.status.check_openvino`).

pip runs in a ``QProcess`` (QGIS stays responsive) with the pinned, ``--no-deps`` command of
:func:`lcgan_qgis.installer.plan.install_command`, into the profile's lcgan folder; numpy is never touched. The
PyTorch offer (fine-tuning) may take two commands, run in turn: PyTorch from its own index, then what fine-tuning
imports beside it that QGIS's Python lacks (onnx, rasterio...), into PyTorch's folder.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import Qgis
from qgis.gui import QgsCollapsibleGroupBox
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QT_VERSION_STR, QObject, QProcess, pyqtSignal
from qgis.PyQt.QtGui import QFontDatabase
from qgis.PyQt.QtWidgets import (
    QApplication,
    QButtonGroup,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ...installer.diagnostics import report
from ...installer.folders import deps_dir, prepare_target, torch_dir
from ...installer.interpreter import InterpreterNotFoundError
from ...installer.plan import (
    CPU_WHEEL,
    DOWNLOAD_MB,
    GPU_WHEEL,
    TORCH_CPU,
    TORCH_CUDA,
    gpu_wheel_available,
    install_commands,
    install_plan,
    is_openvino,
    is_torch,
    recommended_torch,
    recommended_variant,
    runtime_pins,
    torch_plan,
)
from ...installer.status import Activation, DependencyStatus, activate, loaded_modules, provider_summary

VARIANT_TEXT = {
    CPU_WHEEL: "CPU only: {name} {version}, about {mb:.0f} MB",
    GPU_WHEEL: "NVIDIA GPU, also runs on the CPU: {name} {version}, about {mb:.0f} MB",
}


def diagnostics_text() -> str:
    """The diagnostics report with the QGIS version (:mod:`lcgan_qgis.installer.diagnostics`)."""
    return report({"QGIS": f"{Qgis.version()}, Qt {QT_VERSION_STR}"})


def copy_diagnostics() -> str:
    """Put :func:`diagnostics_text` on the clipboard and return it."""
    text = diagnostics_text()
    QApplication.clipboard().setText(text)
    return text


class InstallDialog(QDialog):
    """Says what is missing and what will be downloaded, installs it on request, and reports the outcome.

    ``installed`` is emitted with the :class:`~lcgan_qgis.installer.status.Activation` when pip succeeded.
    """

    installed = pyqtSignal(object)

    def __init__(self, status: DependencyStatus, parent: QWidget | None = None, target: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("lcgan: install Python packages")
        self.setMinimumWidth(520)
        self.status = status
        self.target = target or (torch_dir() if is_torch(status.missing) else deps_dir())
        self.exit_code: int | None = None
        self.activation: Activation | None = None
        self.command: list[str] = []
        self.commands: list[list[str]] = []
        self._pending: list[list[str]] = []
        self._loaded_before: dict[str, str] = {}
        layout = QVBoxLayout(self)
        self.problem_label = QLabel(status.problem)
        self.problem_label.setWordWrap(True)
        layout.addWidget(self.problem_label)
        self.variant_buttons = QButtonGroup(self)
        if CPU_WHEEL in status.missing:
            layout.addWidget(self._variant_box())
        elif "torch" in status.missing:
            layout.addWidget(self._torch_box())
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        layout.addWidget(self.plan_label)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        layout.addWidget(self.result_label)
        layout.addWidget(self._details_box())
        layout.addLayout(self._buttons())
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read_output)
        self.process.finished.connect(self._finished)
        self._update_plan()

    # -- layout --------------------------------------------------------------------------------------------
    def _variant_box(self) -> QWidget:
        """The onnxruntime wheel: CPU, or NVIDIA GPU where PyPI has it, each with its version and size."""
        pins = runtime_pins()
        chosen, why = recommended_variant()
        choices = [(name, VARIANT_TEXT[name].format(name=name, version=pins.get(name, "?"), mb=DOWNLOAD_MB[name]),
                    name == CPU_WHEEL or gpu_wheel_available()) for name in (CPU_WHEEL, GPU_WHEEL)]
        return self._choice_box(choices, chosen, f"Recommended here: {chosen} ({why}).")

    def _torch_box(self) -> QWidget:
        """PyTorch's CPU or CUDA build, each with its size (the CUDA one only with an NVIDIA driver)."""
        chosen, why = recommended_torch()
        choices = [(build, f"{text}: {torch_plan(build, self.target, self.status.missing).describe()}",
                    build in (TORCH_CPU, chosen))
                   for build, text in ((TORCH_CPU, "CPU only"), (TORCH_CUDA, "NVIDIA GPU (CUDA)"))]
        return self._choice_box(choices, chosen, f"Recommended here: {chosen} ({why}). Only fine-tuning uses "
                                "PyTorch, in a separate process.")

    def _choice_box(self, choices: list[tuple[str, str, bool]], chosen: str, note: str) -> QWidget:
        """Radio buttons of ``(value, text, enabled)`` with ``chosen`` checked, and a note below."""
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        for value, text, enabled in choices:
            button = QRadioButton(text)
            button.setProperty("variant", value)
            button.setChecked(value == chosen)
            button.setEnabled(enabled)
            self.variant_buttons.addButton(button)
            column.addWidget(button)
        label = QLabel(note)
        label.setWordWrap(True)
        column.addWidget(label)
        self.variant_buttons.buttonToggled.connect(lambda *_: self._update_plan())
        return box

    def _details_box(self) -> QWidget:
        self.details = QgsCollapsibleGroupBox("Details (pip's log)")
        self.details.setCollapsed(True)
        inner = QVBoxLayout(self.details)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setMinimumHeight(160)
        inner.addWidget(self.log)
        return self.details

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.install_button = QPushButton("Install")
        self.install_button.setDefault(True)
        self.install_button.setEnabled(bool(self.status.missing))
        self.install_button.clicked.connect(self.start)
        self.diagnostics_button = QPushButton("Copy diagnostics")
        self.diagnostics_button.setToolTip("Copy versions, execution providers, GPU driver and folders to the "
                                           "clipboard, for a bug report.")
        self.diagnostics_button.clicked.connect(copy_diagnostics)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        row.addWidget(self.install_button)
        row.addWidget(self.diagnostics_button)
        row.addStretch(1)
        row.addWidget(self.close_button)
        return row

    # -- the plan ------------------------------------------------------------------------------------------
    @property
    def variant(self) -> str:
        """The onnxruntime wheel chosen (the recommended one unless the user picked the other)."""
        button = self.variant_buttons.checkedButton()
        if button is not None:
            return button.property("variant")
        return recommended_torch()[0] if is_torch(self.status.missing) else recommended_variant()[0]

    def choose(self, variant: str) -> None:
        """Select the ``onnxruntime`` or ``onnxruntime-gpu`` wheel."""
        for button in self.variant_buttons.buttons():
            if button.property("variant") == variant:
                button.setChecked(True)

    def _update_plan(self) -> None:
        if not self.status.missing:
            self.plan_label.setText("Nothing can be installed for this problem; see the diagnostics.")
            return
        try:
            if is_torch(self.status.missing):
                self.plan = torch_plan(self.variant, self.target, self.status.missing)
            else:
                self.plan = install_plan(self.status.missing, self.variant, self.target)
            self.commands = install_commands(self.plan)
            self.command = self.commands[0]
        except InterpreterNotFoundError as exc:
            self.plan_label.setText(str(exc))
            self.install_button.setEnabled(False)
            return
        self.plan_label.setText(f"Will install {self.plan.describe()}, into {self.plan.target} (in your QGIS "
                                "profile, kept when the plugin is upgraded). QGIS's numpy stays as it is.")

    # -- running pip ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Run pip (asynchronously); :attr:`exit_code` is set when it ends."""
        prepare_target(self.target)
        self._loaded_before = loaded_modules(self.plan.all_requirements)
        self.install_button.setEnabled(False)
        for button in self.variant_buttons.buttons():
            button.setEnabled(False)
        total = sum(step.download_mb for step in self.plan.steps())
        self.result_label.setText(f"Downloading and installing about {total:.0f} MB…")
        self._pending = list(self.commands)
        self._run_next()

    def _run_next(self) -> None:
        command = self._pending.pop(0)
        self.log.appendPlainText("$ " + " ".join(shlex.quote(part) for part in command))
        self.process.start(command[0], command[1:])

    def _read_output(self) -> None:
        data = bytes(self.process.readAllStandardOutput()).decode("utf-8", errors="replace")
        self.log.appendPlainText(data.rstrip("\n"))

    def _finished(self, exit_code: int, _status: Any = None) -> None:
        if exit_code == 0 and self._pending:  # (the next pip command of the plan)
            self._run_next()
            return
        self.exit_code = exit_code
        if exit_code != 0:
            self.details.setCollapsed(False)
            self.problem_label.setText("The installation did not finish.")
            text = (f"The installation failed (pip exited with code {exit_code}); its log is under Details. "
                    "Copy the diagnostics for a bug report.")
        else:
            self.activation = activate(self.plan.all_requirements, self._loaded_before, self.plan.target)
            text = self.activation.message
            if self.activation.ready or self.activation.restart_needed:  # (the first line said "not installed")
                self.problem_label.setText(f"Installed: {', '.join(self.plan.all_requirements)}.")
            if self.activation.ready and not is_openvino(self.plan.requirements) and not is_torch(
                    self.plan.all_requirements):
                text += f" Models will run on {provider_summary().partition(': ')[2]}."
            self.installed.emit(self.activation)
        self.result_label.setText(f"<b>{text}</b>")
        self.log.appendPlainText(text)


class InstallOffer(QObject):
    """The message-bar entry's button and what it opens. It lives as long as its entry (its Qt parent) and is also
    kept in :attr:`offers`: in the QGIS desktop a plain closure connected to the button was freed once
    :func:`offer_install` returned, and clicking the button crashed QGIS (measured under Xvfb)."""

    offers: ClassVar[list[InstallOffer]] = []

    def __init__(self, iface: Any, status: DependencyStatus, widget: QWidget, target: Path | None,
                 on_installed: Callable[[Activation], None] | None) -> None:
        super().__init__(widget)
        self.iface, self.status, self.widget, self.target = iface, status, widget, target
        self.on_installed = on_installed
        self.dialog: InstallDialog | None = None
        InstallOffer.offers.append(self)

    def open_dialog(self, *_args: object) -> InstallDialog:
        """Show the installer (the button's slot)."""
        self.dialog = InstallDialog(self.status, self.iface.mainWindow(), self.target)
        self.dialog.installed.connect(self.done)
        self.dialog.show()
        return self.dialog

    def withdraw(self) -> None:
        """Remove the entry from the message bar and forget the offer (the plugin's unload)."""
        if not sip.isdeleted(self.widget):
            self.iface.messageBar().popWidget(self.widget)
        if self in InstallOffer.offers:
            InstallOffer.offers.remove(self)

    def done(self, activation: Activation) -> None:
        """After pip: remove the entry when the packages are usable, and say how it went."""
        bar = self.iface.messageBar()
        if activation.ready and not sip.isdeleted(self.widget):
            bar.popWidget(self.widget)
        bar.pushMessage("lcgan", activation.message, Qgis.MessageLevel.Success if activation.ready
                        else Qgis.MessageLevel.Warning, 0 if activation.restart_needed else 8)
        if self.on_installed is not None:
            self.on_installed(activation)


def offer_install(iface: Any, status: DependencyStatus, target: Path | None = None,
                  on_installed: Callable[[Activation], None] | None = None) -> InstallOffer:
    """Put the problem in QGIS's message bar, in one short line, with a button that opens the installer.

    When the install succeeds the entry is removed, and ``on_installed`` receives the activation. Returns the
    offer (its ``button``; its ``dialog`` once opened).
    """
    bar = iface.messageBar()
    widget = bar.createMessage("lcgan", status.problem.removeprefix("lcgan "))  # ("lcgan: needs onnxruntime...")
    offer = InstallOffer(iface, status, widget, target, on_installed)
    offer.button = QPushButton("Install…" if status.missing else "Details…")
    offer.button.clicked.connect(offer.open_dialog)
    widget.layout().addWidget(offer.button)
    bar.pushWidget(widget, Qgis.MessageLevel.Warning)
    return offer
