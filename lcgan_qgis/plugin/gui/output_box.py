"""Where the dock writes: a file in an output folder by default (the project's folder when it has one, else the
folder chosen once and remembered), never a temporary file that vanishes after a restart; a file name may be given
instead. Names are made from the input, the direction, the model and the seed, and never replace an earlier
result."""

from __future__ import annotations

import re
from pathlib import Path

from qgis.core import QgsProject, QgsSettings
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import QFormLayout, QWidget

FOLDER_KEY = "lcgan/dock/output_folder"
DEFAULT_FOLDER = Path.home() / "lcgan results"


def safe_name(text: str) -> str:
    """``"nlcd2011 -> RGB (terrain, seed 0)"`` -> ``"nlcd2011_RGB_terrain_seed_0"``."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", text.replace("->", " ")).strip("_.") or "lcgan"


def project_folder() -> Path | None:
    """The saved project's folder (``None`` while the project has no file)."""
    path = QgsProject.instance().absoluteFilePath()
    return Path(path).parent if path else None


def start_folder() -> Path:
    """The output folder a new dock starts with: the saved project's folder, else the one chosen last."""
    return project_folder() or Path(QgsSettings().value(FOLDER_KEY, str(DEFAULT_FOLDER)))


def new_file_in(folder: Path, name: str) -> str:
    """A new GeoTIFF named after ``name`` in ``folder`` (made), never replacing an earlier result."""
    folder.mkdir(parents=True, exist_ok=True)
    return str(unused_path(folder, safe_name(name)))


def unused_path(folder: Path, stem: str, suffix: str = ".tif") -> Path:
    """``folder/stem.tif``, or ``stem_2.tif``, ``stem_3.tif``... when taken."""
    candidate, number = folder / f"{stem}{suffix}", 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}_{number}{suffix}"
    return candidate


class OutputBox(QWidget):
    """The output folder (remembered) and an optional file name, laid out by ``form``."""

    def __init__(self, form: QFormLayout) -> None:
        super().__init__()
        form.setContentsMargins(0, 0, 0, 0)
        self.setLayout(form)
        self.folder_widget = QgsFileWidget()
        self.folder_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.folder_widget.setToolTip("Results are saved here as GeoTIFFs (the project's folder when the project is "
                                      "saved; remembered).")
        self.folder_widget.setFilePath(str(start_folder()))
        self.folder_widget.fileChanged.connect(self._remember)
        form.addRow("Output folder", self.folder_widget)
        self.output_widget = QgsFileWidget()
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.output_widget.setFilter("GeoTIFF (*.tif *.tiff)")
        self.output_widget.lineEdit().setPlaceholderText("automatic name in the output folder")
        form.addRow("Output file (optional)", self.output_widget)
        QgsProject.instance().readProject.connect(self._project_opened)

    def _remember(self, folder: str) -> None:
        if folder:
            QgsSettings().setValue(FOLDER_KEY, folder)

    def _project_opened(self, *_args: object) -> None:
        folder = project_folder()
        if folder is not None:
            self.folder_widget.setFilePath(str(folder))

    def output_path(self, layer_name: str) -> str:
        """The file to write: the chosen file, else a new file named after ``layer_name`` in the folder."""
        return self.output_widget.filePath() or self.new_file(layer_name)

    def new_file(self, name: str) -> str:
        """A new file named after ``name`` in the output folder (made); also the scenario section's default."""
        return new_file_in(Path(self.folder_widget.filePath() or DEFAULT_FOLDER), name)
