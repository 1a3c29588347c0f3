"""The parts of QgisInterface the plugin uses, around a real main window, map canvas and message bar.

Kept free of pytest so that scripts run by tests in QGIS's own Python (which has no pytest) can use it too.
"""

from __future__ import annotations


class StandInIface:
    """The parts of QgisInterface the plugin uses, around a real main window, map canvas and message bar."""

    def __init__(self) -> None:
        from qgis.gui import QgsMapCanvas, QgsMessageBar
        from qgis.PyQt.QtWidgets import QMainWindow, QMenu, QToolBar, QVBoxLayout, QWidget

        self.window = QMainWindow()
        central = QWidget()
        layout = QVBoxLayout(central)
        self.bar = QgsMessageBar()
        self.canvas = QgsMapCanvas()
        layout.addWidget(self.bar)
        layout.addWidget(self.canvas)
        self.window.setCentralWidget(central)
        self.toolbar = QToolBar("Raster")
        self.window.addToolBar(self.toolbar)
        self.menus: dict[str, QMenu] = {}

    def mainWindow(self):
        return self.window

    def mapCanvas(self):
        return self.canvas

    def messageBar(self):
        return self.bar

    def addDockWidget(self, area, dock) -> None:
        self.window.addDockWidget(area, dock)

    def removeDockWidget(self, dock) -> None:
        self.window.removeDockWidget(dock)

    def addToolBar(self, name: str):
        from qgis.PyQt.QtWidgets import QToolBar

        toolbar = QToolBar(name)
        self.window.addToolBar(toolbar)
        return toolbar

    def activeLayer(self):
        return None

    def addRasterToolBarIcon(self, action) -> None:
        self.toolbar.addAction(action)

    def removeRasterToolBarIcon(self, action) -> None:
        self.toolbar.removeAction(action)

    def addPluginToRasterMenu(self, name: str, action) -> None:
        from qgis.PyQt.QtWidgets import QMenu

        self.menus.setdefault(name, QMenu(name)).addAction(action)

    def removePluginRasterMenu(self, name: str, action) -> None:
        self.menus[name].removeAction(action)
