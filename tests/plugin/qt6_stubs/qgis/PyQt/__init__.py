"""``qgis.PyQt`` as QGIS 4 has it: PyQt6's modules under QGIS's names."""

import contextlib
import importlib
import sys

from PyQt6 import sip  # noqa: F401

for _name in ("QtCore", "QtGui", "QtWidgets", "QtNetwork", "QtXml", "QtSvg", "QtPrintSupport"):
    with contextlib.suppress(ImportError):
        sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"PyQt6.{_name}")
