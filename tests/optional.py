"""Skip markers for tests of optional packages: they run where the package is installed (``make setup`` installs
requirements/optional.txt) and skip, saying why, where it is not (a plain ``pip install -r requirements/runtime.txt``
CI, a QGIS without it)."""

from __future__ import annotations

import pytest


def _openvino_missing() -> str | None:
    try:
        import openvino  # noqa: F401 (only whether it imports)
    except ImportError as exc:
        return (f"OpenVINO is optional and does not import here ({exc}); pip install -r requirements/optional.txt "
                "runs these tests")
    return None


OPENVINO_MISSING = _openvino_missing()
needs_openvino = pytest.mark.skipif(OPENVINO_MISSING is not None, reason=OPENVINO_MISSING or "")
