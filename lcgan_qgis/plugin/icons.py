"""The plugin's icon, found in the installed plugin or the repository checkout."""

from __future__ import annotations

from qgis.PyQt.QtGui import QIcon

from ..core.resources import resources_dir


def icon_path(name: str = "lcgan.svg") -> str:
    """Path of an icon in ``resources/icons``."""
    return str(resources_dir() / "icons" / name)


def plugin_icon() -> QIcon:
    """The lcgan icon."""
    return QIcon(icon_path())
