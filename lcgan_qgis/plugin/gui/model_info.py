"""The model box: what a model file promises (direction, tile size, GSD, bands) and which execution provider would
run it, in a few wrapped lines, with its classes (colour swatch, code, name) in a collapsible list below, so it
fits the width QGIS gives a new dock. Reads the contract through the core; never runs inference."""

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

ERROR_STYLE = "color:#b00020"


def runs_on(device: str) -> str:
    """Where a run with ``device`` would go, for people: ``"CPU (no NVIDIA GPU driver found: ...)"``."""
    line = provider_summary(device)
    provider, _, reason = line.partition(": ")
    return reason if provider.endswith("ExecutionProvider") and reason else line


def summary_html(contract: ModelContract, path: Path, wanted: Direction, device: str) -> str:
    """The model's lines: name and version, direction, tiles, resolution, bands, where it runs."""
    version = f", version {html.escape(contract.model_version)}" if contract.model_version else ""
    rows = [
        ("Model", f"{html.escape(path.name)}{version}"),
        ("Direction", html.escape(DIRECTION_LABELS[contract.direction])),
        ("Tiles", f"{contract.tile_size_px} px, overlap {contract.overlap_px} px"),
        ("Resolution", f"{contract.gsd_m:g} m per pixel"),
        ("Image bands", f"{html.escape(', '.join(contract.band_names))}; {html.escape(contract.radiometry.mode)} "
                        "radiometry"),
        *([("Elevation", "needed for " + html.escape(contract.terrain.describe()) if contract.terrain is not None
            else "not used (map only)")] if contract.direction is Direction.LANDCOVER_TO_RGB else []),
        ("Runs on", html.escape(runs_on(device))),
    ]
    text = "<br>".join(f"<b>{key}:</b> {value}" for key, value in rows)
    if contract.direction is not wanted:
        other = html.escape(DIRECTION_LABELS[contract.direction])
        text = (f"<p style='{ERROR_STYLE}'><b>This model translates {other}; choose a "
                f"{html.escape(DIRECTION_LABELS[wanted])} model.</b></p>") + text
    return text


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
        self.classes_box.setTitle(f"Classes: {len(self.contract.scheme)}")
        self.classes.setText(f"{html.escape(self.contract.scheme.name)}{classes_html(self.contract)}")
        self.classes_box.setVisible(True)
        return self.contract

    def _problem(self, text: str) -> None:
        self.summary.setText(f"<p style='{ERROR_STYLE}'>{html.escape(text)}</p>")
        self.classes_box.setVisible(False)
        return None

    def toPlainText(self) -> str:
        """Everything the box says, as plain text (summary, then the class list)."""
        parts = [self.summary.text()]
        if self.classes_box.isVisibleTo(self):
            parts += [self.classes_box.title(), self.classes.text()]
        document = QTextDocument()
        document.setHtml("<br>".join(parts))
        return document.toPlainText()

    def toHtml(self) -> str:
        return self.summary.text() + self.classes.text()
