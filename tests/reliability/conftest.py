"""Fixtures of the reliability catalogue: the plugin tests' tiny models, Processing with the lcgan provider and the
stand-in iface, reused as they are (imported here so that pytest registers them for this folder too)."""

from __future__ import annotations

from tests.plugin.conftest import iface, lcgan, models  # noqa: F401 (fixtures)
