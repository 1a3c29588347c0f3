"""The model info box: what a model file promises (direction, classes with colour swatches, tile size, GSD) and
which execution provider would run it. Reads the contract through the core; never runs inference."""

from __future__ import annotations

import html
from pathlib import Path

from qgis.PyQt.QtWidgets import QTextBrowser, QWidget

from ...core.contract import Direction, ModelContract
from ...core.deps import provider_summary
from ...core.errors import LcganError
from ...core.job import read_contract, resolve_model_path

DIRECTION_TEXT = {
    Direction.LANDCOVER_TO_RGB: "land cover → synthetic RGB",
    Direction.RGB_TO_LANDCOVER: "RGB imagery → land cover",
}


def contract_html(contract: ModelContract, path: Path, wanted: Direction, provider_line: str) -> str:
    """The info box text for ``contract``."""
    rows = [
        ("Model", html.escape(path.name) + (f" (version {html.escape(contract.model_version)})"
                                            if contract.model_version else "")),
        ("Direction", DIRECTION_TEXT[contract.direction]),
        ("Tiles", f"{contract.tile_size_px} px, overlap {contract.overlap_px} px"),
        ("Resolution", f"{contract.gsd_m:g} m per pixel"),
        ("Image bands", html.escape(", ".join(contract.band_names))
         + f" ({html.escape(contract.radiometry.mode)} radiometry)"),
        ("Runs on", html.escape(provider_line)),
    ]
    text = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
    warning = ""
    if contract.direction is not wanted:
        warning = (f"<p style='color:#b00020'><b>This model translates {DIRECTION_TEXT[contract.direction]}; "
                   f"choose a {DIRECTION_TEXT[wanted]} model.</b></p>")
    cells = [
        f"<td style='background-color:{c.hex}' width='14'>&nbsp;&nbsp;&nbsp;</td>"
        f"<td align='right'>{c.code}</td><td>{html.escape(c.name)}&nbsp;&nbsp;</td>"
        for c in contract.scheme.classes
    ]
    half = (len(cells) + 1) // 2  # two columns of classes
    swatches = "".join(
        "<tr>" + cells[i] + (cells[i + half] if i + half < len(cells) else "") + "</tr>" for i in range(half)
    )
    return (
        f"{warning}<table cellspacing='2'>{text}</table>"
        f"<p><b>{len(contract.scheme)} classes</b> ({html.escape(contract.scheme.name)})</p>"
        f"<table cellspacing='1' cellpadding='1' style='font-size:small'>{swatches}</table>"
    )


class ModelInfoBox(QTextBrowser):
    """Read-only rich-text box describing the chosen (or bundled) model."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(False)
        self.setMinimumHeight(300)
        self.contract: ModelContract | None = None

    def show_model(self, model_path: str | None, direction: Direction, device: str) -> ModelContract | None:
        """Describe ``model_path`` (``None``: the bundled model for ``direction``); returns its contract."""
        self.contract = None
        try:
            path = resolve_model_path(model_path, direction)
            self.contract = read_contract(path)
        except LcganError as exc:
            self.setHtml(f"<p style='color:#b00020'>{html.escape(str(exc))}</p>")
            return None
        except ImportError as exc:
            self.setHtml(f"<p style='color:#b00020'>onnxruntime is not available ({html.escape(str(exc))}). "
                         "Install it from the message bar.</p>")
            return None
        self.setHtml(contract_html(self.contract, path, direction, provider_summary(device)))
        return self.contract
