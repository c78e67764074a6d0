"""Desktop notifications with sound through `desktop-notifier` (D-Bus on Linux, native APIs on
Windows and macOS). Best effort by design: on a headless box or without a notification service the
call fails and the app carries on; nothing here may raise into the UI.

The title and body come from other people (a customer's name and subject, a message's text), so they reach the
system as plain, bounded text (``shown``): control characters (a Windows toast is XML, where most of them are not
allowed, and one failed send turns notifications off for the run), direction overrides and invisible characters are
dropped, and where the body is markup (Linux: the freedesktop ``body-markup`` that GNOME, KDE, dunst and mako read)
``<``, ``>`` and ``&`` become look-alikes, so a message cannot draw a link or hide its own words. Not entities: a
server without markup would show ``&lt;`` as it is.

How often is another person's choice too: nothing on the server limits how fast a customer writes, so the pages ask
a ``Throttle`` before each notification and chime: one per ticket per ``QUIET_S``, at most ``BURST`` in any
``QUIET_S`` overall. What is not told is not lost: the inbox counts it unread."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

TIMEOUT = 5.0
QUIET_S = 10.0  # one notification per ticket this often
BURST = 4  # and at most this many in any QUIET_S, whatever the tickets
TITLE_CHARS = 100
BODY_CHARS = 200
# C0 and C1 controls but tab and line feed (CR is folded first), zero-widths and direction marks, bidi embeddings,
# overrides and isolates, the byte order mark, and the two characters XML refuses beyond the controls
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufffe\uffff]")
_MARKUP = str.maketrans({"<": "\u2039", ">": "\u203a", "&": "\uff06"})  # single angle quotes, full-width ampersand


def shown(text: str, limit: int, *, lines: bool, markup: bool) -> str:
    """``text`` as a notification may show it: visible characters only, one line unless ``lines``, markup's
    characters as look-alikes when ``markup``, at most ``limit`` characters (cut with an ellipsis)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _HIDDEN.sub("", text if lines else text.replace("\n", " "))
    if markup:
        text = text.translate(_MARKUP)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class Throttle:
    """Which notifications go out: one per key (a ticket) every ``every`` seconds, at most ``burst`` in any ``every``
    seconds overall. Remembers only what it let through within the last ``every`` (at most ``burst`` keys)."""

    def __init__(
        self, every: float | None = None, burst: int = BURST, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every, self.burst, self.clock = QUIET_S if every is None else every, burst, clock
        self.last: dict[str, float] = {}  # key -> when it was last let through

    def allow(self, key: str) -> bool:
        now = self.clock()
        self.last = {k: t for k, t in self.last.items() if now - t < self.every}
        if key in self.last or len(self.last) >= self.burst:
            return False
        self.last[key] = now
        return True


class Notifier:
    def __init__(self, *, markup: bool = sys.platform.startswith("linux")) -> None:
        self.markup = markup  # the body is freedesktop markup (Linux), see the module's docstring
        self._notifier: Any = None
        self.disabled = False
        self.attempts = 0
        self.sent = 0

    async def notify(self, title: str, body: str) -> bool:
        self.attempts += 1
        if self.disabled:
            return False
        try:
            from desktop_notifier import DEFAULT_SOUND, DesktopNotifier

            if self._notifier is None:
                self._notifier = DesktopNotifier(app_name="SupportChat")
            title = shown(title, TITLE_CHARS, lines=False, markup=False)  # a title is never markup
            body = shown(body, BODY_CHARS, lines=True, markup=self.markup)
            await asyncio.wait_for(self._notifier.send(title=title, message=body, sound=DEFAULT_SOUND), TIMEOUT)
        except Exception as exc:  # no D-Bus session, no notification daemon, denied permission: never fatal
            log.info("desktop notification unavailable (%s); not trying again this run", exc)
            self.disabled = True
            return False
        self.sent += 1
        return True


notifier = Notifier()

# a short two-tone chime through Web Audio, so there is a sound even where the OS notification is silent; its
# context is closed once the tones ended (a running AudioContext is never collected: each chime kept one)
CHIME_JS = """
try { const c = new (window.AudioContext || window.webkitAudioContext)();
  [660, 880].forEach((f, i) => { const o = c.createOscillator(), g = c.createGain(); o.frequency.value = f;
    g.gain.setValueAtTime(0.08, c.currentTime + i * 0.12); g.gain.exponentialRampToValueAtTime(0.001,
    c.currentTime + i * 0.12 + 0.25); o.connect(g).connect(c.destination); o.start(c.currentTime + i * 0.12);
    o.stop(c.currentTime + i * 0.12 + 0.3); });
  setTimeout(() => c.close(), 1000); } catch (e) {}
"""
