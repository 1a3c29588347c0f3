"""The model box: what a model makes, at what resolution, whether it needs elevation and where it would run, in a
few wrapped lines in a GIS analyst's words; the technical details (version, tiles, bands and how their values are
read) and the classes (colour swatch, code, name) in collapsible groups below, so it fits the width QGIS gives a new
dock. Reads the contract through the core; never runs inference."""

from __future__ import annotations

import html
from pathlib import Path

from qgis.gui import QgsCollapsibleGroupBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QTextDocument
from qgis.PyQt.QtWidgets import QLabel, QVBoxLayout, QWidget

from ...core.choices import DIRECTION_LABELS
from ...core.errors import LcganError
from ...core.model.contract import Direction, ModelContract
from ...core.run.job import read_contract, resolve_model_path
from ...installer.status import provider_summary
from ..models import adapted_models, bundled_models

ERROR_STYLE = "color:#b00020"


def runs_on(device: str) -> str:
    """Where a run with ``device`` would go, for people: ``"CPU (no NVIDIA GPU driver found: ...)"``."""
    line = provider_summary(device)
    provider, _, reason = line.partition(": ")
    return reason if provider.endswith("ExecutionProvider") and reason else line


def model_name(path: Path, direction: Direction) -> str:
    """``"bundled"``, ``"bundled, with relief"``... for a bundled model, ``"my_region (adapted)"`` for an adapted
    one, else the file's name."""
    bundled = next((m for m in bundled_models() if m.path == path), None)
    if bundled is None:
        return next((m.label for m in adapted_models() if m.path == path), path.name)
    return "bundled" if bundled.direction is Direction.RGB_TO_LANDCOVER else f"bundled, {bundled.short}"


def summary_html(contract: ModelContract, path: Path, wanted: Direction, device: str) -> str:
    """The model's lines, in a GIS analyst's words: which model, what it makes, resolution, elevation, where it
    runs. (The technical ones are in :func:`details_html`.)"""
    legend = contract.scheme.name
    if "classes" not in legend:
        legend += f", {len(contract.scheme)} classes"
    rows = [
        ("Model", html.escape(model_name(path, contract.direction))),
        ("Translates", html.escape(DIRECTION_LABELS[contract.direction])),
        ("Legend", html.escape(legend)),
        ("Resolution", f"{contract.gsd_m:g} m per pixel"),
        *([("Elevation", "needed (it paints relief)" if contract.terrain is not None else "not used (map only)")]
          if contract.direction is Direction.LANDCOVER_TO_RGB else []),
        ("Runs on", html.escape(runs_on(device))),
    ]
    text = "<br>".join(f"<b>{key}:</b> {value}" for key, value in rows)
    if contract.direction is not wanted:
        other = html.escape(DIRECTION_LABELS[contract.direction])
        text = (f"<p style='{ERROR_STYLE}'><b>This model translates {other}; choose a "
                f"{html.escape(DIRECTION_LABELS[wanted])} model.</b></p>") + text
    return text


def details_html(contract: ModelContract, path: Path) -> str:
    """What a specialist asks: file, version, tiles, bands and how their values are read, elevation channels."""
    rows = [
        ("File", html.escape(str(path))),
        ("Version", html.escape(contract.model_version or "-")),
        ("Tiles", f"{contract.tile_size_px} px, overlap {contract.overlap_px} px"),
        ("Image bands", f"{html.escape(', '.join(contract.band_names))}; values read as "
                        f"{html.escape(contract.radiometry.mode)}"),
        *([("Elevation channels", html.escape(contract.terrain.describe()))] if contract.terrain is not None else []),
    ]
    return "<br>".join(f"<b>{key}:</b> {value}" for key, value in rows)


def classes_html(contract: ModelContract) -> str:
    """One row per class: colour swatch, code, name."""
    rows = "".join(
        f"<tr><td style='background-color:{c.hex}'>&nbsp;&nbsp;&nbsp;&nbsp;</td>"
        f"<td align='right'>&nbsp;{c.code}</td><td>&nbsp;{html.escape(c.name)}</td></tr>"
        for c in contract.scheme.classes
    )
    return f"<table cellspacing='1' cellpadding='0'>{rows}</table>"


class ModelInfoBox(QWidget):
    """Describes the chosen (or bundled) model: a wrapped summary and a collapsible class list."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.contract: ModelContract | None = None
        self.runtime_missing = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)
        self.details_box = QgsCollapsibleGroupBox("Details")
        self.details_box.setCollapsed(True)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        QVBoxLayout(self.details_box).addWidget(self.details)
        layout.addWidget(self.details_box)
        self.classes_box = QgsCollapsibleGroupBox("Classes")
        self.classes_box.setCollapsed(True)
        inner = QVBoxLayout(self.classes_box)
        self.classes = QLabel()
        self.classes.setWordWrap(True)
        inner.addWidget(self.classes)
        layout.addWidget(self.classes_box)

    def show_model(self, model_path: str | None, direction: Direction, device: str) -> ModelContract | None:
        """Describe ``model_path`` (``None``: the bundled model for ``direction``); returns its contract."""
        self.contract, self.runtime_missing = None, False
        try:
            path = resolve_model_path(model_path, direction)
            self.contract = read_contract(path)
        except LcganError as exc:
            return self._problem(str(exc))
        except ImportError as exc:
            self.runtime_missing = True
            return self._problem(f"onnxruntime is not installed ({exc}); use Install below.")
        self.summary.setText(summary_html(self.contract, path, direction, device))
        self.details.setText(details_html(self.contract, path))
        self.details_box.setVisible(True)
        self.classes_box.setTitle(f"Classes: {len(self.contract.scheme)}")
        self.classes.setText(f"{html.escape(self.contract.scheme.name)}{classes_html(self.contract)}")
        self.classes_box.setVisible(True)
        return self.contract

    def _problem(self, text: str) -> None:
        self.summary.setText(f"<p style='{ERROR_STYLE}'>{html.escape(text)}</p>")
        self.classes_box.setVisible(False)
        self.details_box.setVisible(False)
        return None

    def toPlainText(self) -> str:
        """Everything the box says, as plain text (summary, then the class list)."""
        parts = [self.summary.text()]
        if self.classes_box.isVisibleTo(self):
            parts += ["Details", self.details.text(), self.classes_box.title(), self.classes.text()]
        document = QTextDocument()
        document.setHtml("<br>".join(parts))
        return document.toPlainText()

    def toHtml(self) -> str:
        return self.summary.text() + self.classes.text()
