"""``python -m lcgan_qgis``: the command line of :mod:`lcgan_qgis.cli` (no QGIS needed)."""

import sys

from .cli import main

sys.exit(main())
