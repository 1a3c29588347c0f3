"""The QGIS plugin object: registers the Processing provider, adds the dock panel and checks dependencies.

``qgis_process`` and Processing-only sessions call :meth:`LcganPlugin.initProcessing` with ``iface`` set to
``None``; the desktop also calls :meth:`initGui`.
"""

from __future__ import annotations

import logging
from typing import Any

from qgis.core import Qgis, QgsApplication, QgsMessageLog
from qgis.PyQt.QtCore import Qt

try:  # Qt6 moved QAction to QtGui
    from qgis.PyQt.QtGui import QAction
except ImportError:
    from qgis.PyQt.QtWidgets import QAction

from ..installer.folders import add_deps_to_path
from ..installer.status import Activation, check_runtime, provider_summary
from .icons import plugin_icon
from .processing_provider import LcganProvider

LOG = logging.getLogger(__name__)
MENU = "&lcgan"
TOOLBAR, TOOLBAR_ID = "lcgan", "LcganToolBar"


class LcganPlugin:
    """Plugin entry object created by :func:`lcgan_qgis.classFactory`."""

    def __init__(self, iface: Any) -> None:
        self.iface = iface
        self.provider: LcganProvider | None = None
        self.dock: Any = None
        self.action: QAction | None = None
        self.toolbar: Any = None
        self.install_offer: Any = None
        add_deps_to_path()

    def initProcessing(self) -> None:
        """Register the ``lcgan`` Processing provider (once; another copy already registered is left alone)."""
        registry = QgsApplication.processingRegistry()
        if self.provider is None and registry.providerById("lcgan") is None:
            provider = LcganProvider()
            if registry.addProvider(provider):
                self.provider = provider

    def initGui(self) -> None:
        """Provider, dock panel (hidden until asked for), menu entry and the plugin's own toolbar (QGIS hides the
        Raster toolbar by default), dependency check."""
        self.initProcessing()
        from .gui.dock import LcganDock

        self.dock = LcganDock(self.iface, self.iface.mainWindow())
        self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        self.action = QAction(plugin_icon(), "lcgan: land cover ↔ imagery", self.iface.mainWindow())
        self.action.setCheckable(True)
        self.action.setToolTip("Translate land cover to synthetic imagery and imagery to land cover")
        self.action.toggled.connect(self.dock.setUserVisible)
        self.dock.visibilityChanged.connect(self.action.setChecked)
        self.toolbar = self.iface.addToolBar(TOOLBAR)
        self.toolbar.setObjectName(TOOLBAR_ID)  # (QGIS restores its place and visibility by this name)
        self.toolbar.addAction(self.action)
        self.iface.addPluginToRasterMenu(MENU, self.action)
        self.check_dependencies()

    def check_dependencies(self) -> bool:
        """Log which execution provider will run, or offer to install what is missing (message bar)."""
        status = check_runtime()
        if status.ok:
            QgsMessageLog.logMessage(
                f"onnxruntime {status.onnxruntime_version}, numpy {status.numpy_version}; {provider_summary()}",
                "lcgan", Qgis.MessageLevel.Info,
            )
            return True
        QgsMessageLog.logMessage(f"{status.problem} ({status.details})", "lcgan", Qgis.MessageLevel.Warning)
        if self.iface is not None:
            from .gui.deps_dialog import offer_install

            self.install_offer = offer_install(self.iface, status, on_installed=self.dependencies_installed)
        return False

    def dependencies_installed(self, activation: Activation) -> None:
        """After the installer: log the outcome and let the dock describe the model with the new runtime."""
        level = Qgis.MessageLevel.Info if activation.ready else Qgis.MessageLevel.Warning
        QgsMessageLog.logMessage(activation.message, "lcgan", level)
        if activation.ready and self.dock is not None:
            self.dock.refresh_model_info()

    def unload(self) -> None:
        """Remove everything :meth:`initGui` / :meth:`initProcessing` added."""
        if self.install_offer is not None:
            self.install_offer.withdraw()
            self.install_offer = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.action is not None:
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.action = None
        if self.toolbar is not None:
            self.iface.mainWindow().removeToolBar(self.toolbar)
            self.toolbar.setParent(None)
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.dock is not None:
            self.dock.cancel()
            self.dock.disconnect_project()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
