"""Messages in QGIS's message bar: one short line a user can read at a glance, the whole text behind "Show more"
(the bar cuts long lines off)."""

from __future__ import annotations

from typing import Any

from qgis.core import Qgis

#: Characters of a message shown in the bar itself (the bar of a 1366 px window shows about 150).
SHORT_CHARS = 110
SECONDS = 8


def short_text(text: str, limit: int = SHORT_CHARS) -> str:
    """The first sentence of ``text`` (cut at a word, with "…", past ``limit`` characters)."""
    first = text.strip().split("\n", 1)[0]
    end = first.find(". ")
    first = first[:end + 1] if 0 < end < limit else first
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def push(bar: Any, text: str, level: Qgis.MessageLevel) -> None:
    """Show ``text`` in ``bar``: short, with the whole of it behind "Show more" when it is longer; errors stay
    until closed."""
    if bar is None:
        return
    duration = 0 if level == Qgis.MessageLevel.Critical else SECONDS
    short = short_text(text)
    if short == text.strip():
        bar.pushMessage("lcgan", text, level, duration)
    else:
        bar.pushMessage("lcgan", short, text, level, duration)
