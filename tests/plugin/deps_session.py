"""A QGIS session in QGIS's own Python (no onnxruntime), driven by ``tests/plugin/test_install.py``.

``python3 deps_session.py SETTINGS.json`` starts a real QgsApplication with Processing, loads the lcgan plugin from
a plugin folder installed from its zip, and follows the user's path: the message bar offers the install, the dialog
installs from the wheel folder named by pip's own settings (``PIP_NO_INDEX``, ``PIP_FIND_LINKS``, set by the test),
and then, in the same process, the dock describes the model and a Processing run translates a raster. Mode
``restart``: a copy of a runtime package is already loaded when the install runs, so the dialog must say that a
restart is needed. Prints one JSON object with what it saw.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

settings = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
sys.path.insert(0, settings["plugins"])  # the installed plugin (its python_deps folder is the installer's target)
sys.path.insert(1, settings["repo"])  # tests.plugin.stand_in
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import QgsApplication  # noqa: E402

QgsApplication.setPrefixPath("/usr", True)
app = QgsApplication([], True)
app.initQgis()
sys.path.append("/usr/share/qgis/python/plugins")
from processing.core.Processing import Processing  # noqa: E402
from qgis.PyQt.QtCore import QCoreApplication  # noqa: E402

Processing.initialize()

import lcgan_qgis  # noqa: E402
from lcgan_qgis.installer import folders  # noqa: E402
from lcgan_qgis.installer.status import DependencyStatus  # noqa: E402
from tests.plugin.stand_in import StandInIface  # noqa: E402

seen: dict[str, object] = {"plugin_dir": str(Path(lcgan_qgis.__file__).parent)}


def wait_until(predicate, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        QCoreApplication.processEvents()
        if predicate():
            return True
        time.sleep(0.05)
    return False


if settings["mode"] == "restart":  # an older copy, loaded before the install
    old = folders.prepare_target() / "flatbuffers"
    old.mkdir()
    (old / "__init__.py").write_text("__version__ = '1.0'\n", encoding="utf-8")
    folders.add_deps_to_path()
    import flatbuffers

    seen["preloaded"] = flatbuffers.__version__

iface = StandInIface()
plugin = lcgan_qgis.classFactory(iface)
plugin.initGui()
seen["onnxruntime_before"] = "onnxruntime" in sys.modules
items = iface.messageBar().items()
seen["bar_texts"] = [item.text() for item in items]
seen["bar_widths"] = [item.sizeHint().width() for item in items]
from qgis.PyQt.QtWidgets import QPushButton  # noqa: E402

buttons = [b for item in items for b in item.findChildren(QPushButton) if b.text().startswith("Install")]
seen["buttons"] = [b.text() for b in buttons]
if settings["mode"] == "restart":
    from lcgan_qgis.plugin.gui.deps_dialog import InstallDialog

    status = DependencyStatus(False, ("flatbuffers",), "flatbuffers is old.", "")
    dialog = InstallDialog(status, iface.mainWindow())
else:
    buttons[0].click()
    from lcgan_qgis.plugin.gui.deps_dialog import InstallOffer

    dialog = InstallOffer.offers[-1].dialog
    seen["recommended"] = dialog.variant
    seen["plan_before_choice"] = dialog.plan_label.text()
    dialog.choose(settings["variant"])
seen["plan"] = dialog.plan_label.text()
seen["radio_labels"] = [b.text() for b in dialog.variant_buttons.buttons()]
dialog.install_button.click()
seen["finished"] = wait_until(lambda: dialog.exit_code is not None, settings["timeout_s"])
seen["exit_code"] = dialog.exit_code
seen["log_first_line"] = dialog.log.toPlainText().splitlines()[0]
seen["log_tail"] = dialog.log.toPlainText()[-2000:]
seen["result"] = dialog.result_label.text()
activation = dialog.activation
seen["ready"] = activation.ready if activation else None
seen["restart_needed"] = activation.restart_needed if activation else None
seen["bar_after"] = [item.text() for item in iface.messageBar().items()]
if settings["mode"] == "install":
    plugin.dock.set_direction(lcgan_qgis.core.model.contract.Direction.RGB_TO_LANDCOVER)
    plugin.dock.model_widget.setFilePath(settings["model"])
    seen["dock_info"] = plugin.dock.info_box.toPlainText()
    import onnxruntime
    import processing

    seen["onnxruntime_file"] = onnxruntime.__file__
    result = processing.run("lcgan:rgb_to_landcover", {"INPUT": settings["input"], "MODEL": settings["model"],
                                                      "OUTPUT": settings["output"]})
    seen["output"] = result["OUTPUT"]
    seen["provider"] = result["PROVIDER"]
plugin.unload()
print("SEEN " + json.dumps(seen))
sys.stdout.flush()
os._exit(0)  # (exitQgis with live widgets can crash Debian's 3.22 at shutdown; the result is printed)
