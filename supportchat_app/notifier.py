"""Desktop notifications with sound through `desktop-notifier` (D-Bus on Linux, native APIs on
Windows and macOS). Best effort by design: on a headless box or without a notification service the
call fails and the app carries on; nothing here may raise into the UI.

The title and body come from other people (a customer's name and subject, a message's text), so they reach the
system as plain, bounded text (``shown``): control characters (a Windows toast is XML, where most of them are not
allowed, and one failed send turns notifications off for the run), direction overrides and invisible characters are
dropped (not the joiners and variation selectors that emoji and many scripts are written with), and where the body
is markup (Linux: the freedesktop ``body-markup`` that GNOME, KDE, dunst and mako read) ``<``, ``>`` and ``&`` become
look-alikes, so a message cannot draw a link or hide its own words. Not entities: a server without markup would show
``&lt;`` as it is.

How often is another person's choice too: nothing on the server limits how fast a customer writes, so the pages ask
a ``Throttle`` before each notification and chime. A ticket is told at most once per ``QUIET_S``, and so is a sender
(the customer, or the colleague who mentions): one customer writing into many tickets holds one of the ``BURST``
notifications a quiet period allows, not all of them, and a sender or ticket told in the period before may not take
the last one, which stays for someone not told lately. What the throttle holds back is not dropped: once its quiet
period ended, ``Throttle.summary`` gives it as one notification ("3 new messages in 2 tickets") that opens the inbox.
So a flood is at most one notification of its own and one summary per quiet period."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from nicegui import app

log = logging.getLogger(__name__)

TIMEOUT = 5.0
QUIET_S = 10.0  # one notification per ticket this often
BURST = 4  # and at most this many in any QUIET_S, whatever the tickets
TITLE_CHARS = 100
BODY_CHARS = 200
# C0 and C1 controls but tab and line feed (CR is folded first), the zero-width space, direction marks (Arabic's
# too), bidi embeddings, overrides and isolates, the word joiner and invisible operators, the byte order mark, and the
# two characters XML refuses beyond the controls. Not the zero-width joiner and non-joiner (U+200D, U+200C) nor
# variation selectors: emoji sequences (👩‍💻, ❤️) and Persian and Indic words are written with them; they move no text
_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufffe\uffff]"
)
_MARKUP = str.maketrans({"<": "\u2039", ">": "\u203a", "&": "\uff06"})  # single angle quotes, full-width ampersand


def shown(text: str, limit: int, *, lines: bool, markup: bool) -> str:
    """``text`` as a notification may show it: visible characters only, one line unless ``lines``, markup's
    characters as look-alikes when ``markup``, at most ``limit`` characters (cut with an ellipsis)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _HIDDEN.sub("", text if lines else text.replace("\n", " "))
    if markup:
        text = text.translate(_MARKUP)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Held:
    """What a ``Throttle`` held back in one quiet period: how many messages (or mentions) in how many tickets."""

    count: int
    tickets: int

    def text(self, noun: Literal["message", "mention"]) -> str:
        """E.g. "3 new messages in 2 tickets"."""
        many = "" if self.count == 1 else "s"
        return f"{self.count} new {noun}{many} in {self.tickets} ticket{'' if self.tickets == 1 else 's'}"


class Throttle:
    """Which notifications go out on their own, and what is told later as one summary (see the module docstring).

    ``allow(ticket, sender)``: True if this one is told now (one per ticket and one per sender every ``every``
    seconds, at most ``burst`` in any ``every`` seconds, the last of them not for a sender told in the period
    before; without a sender, the ticket stands for it). Else False and it is held, until ``summary`` gives what was
    held once ``every`` seconds passed since the first of it. Remembers what it told for two periods (at most
    ``2 * burst`` tickets and senders) and what it holds (one count per ticket)."""

    def __init__(
        self, every: float | None = None, burst: int = BURST, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every, self.burst, self.clock = QUIET_S if every is None else every, burst, clock
        self.tickets: dict[str, float] = {}  # ticket -> when it was last told on its own
        self.senders: dict[str, float] = {}  # sender -> when they were last told on their own
        self.held: dict[str, int] = {}  # ticket -> how many of its messages wait for the summary
        self.held_since: float | None = None  # when the first of them was held

    def allow(self, ticket: str, sender: str | None = None, count: int = 1) -> bool:
        """Whether to tell this news now; else ``count`` messages of ``ticket`` are held for the summary."""
        now = self.clock()
        self.tickets = {k: t for k, t in self.tickets.items() if now - t < 2 * self.every}
        self.senders = {k: t for k, t in self.senders.items() if now - t < 2 * self.every}
        who = ticket if sender is None else sender
        told = sum(now - t < self.every for t in self.tickets.values())
        room = self.burst - 1 if who in self.senders else self.burst  # told in the period before: not the last one
        quiet = now - self.tickets.get(ticket, -math.inf) >= self.every
        quiet = quiet and now - self.senders.get(who, -math.inf) >= self.every
        if not quiet or told >= room:
            self.held[ticket] = self.held.get(ticket, 0) + count
            self.held_since = now if self.held_since is None else self.held_since
            return False
        self.tickets[ticket] = self.senders[who] = now
        if self.held.pop(ticket, None) is not None and not self.held:  # told now: its held messages with it
            self.held_since = None
        return True

    def summary(self) -> Held | None:
        """What was held, once ``every`` seconds passed since the first of it (and then forgotten); else None."""
        if self.held_since is None or self.clock() - self.held_since < self.every:
            return None
        held = Held(sum(self.held.values()), len(self.held))
        self.held, self.held_since = {}, None
        return held


class Notifier:
    def __init__(self, *, markup: bool = sys.platform.startswith("linux")) -> None:
        self.markup = markup  # the body is freedesktop markup (Linux), see the module's docstring
        self._notifier: Any = None
        self.disabled = False
        self.attempts = 0
        self.sent = 0

    async def notify(self, title: str, body: str, on_clicked: Callable[[], None] | None = None) -> bool:
        """Send one notification; ``on_clicked`` runs on this event loop when the user clicks it (some systems call
        back from a thread of their own)."""
        self.attempts += 1
        if self.disabled:
            return False
        try:
            from desktop_notifier import DEFAULT_SOUND, DesktopNotifier

            if self._notifier is None:
                self._notifier = DesktopNotifier(app_name="SupportChat")
            title = shown(title, TITLE_CHARS, lines=False, markup=False)  # a title is never markup
            body = shown(body, BODY_CHARS, lines=True, markup=self.markup)
            loop = asyncio.get_running_loop()
            clicked = None if on_clicked is None else lambda: loop.call_soon_threadsafe(on_clicked)
            sent = self._notifier.send(title=title, message=body, sound=DEFAULT_SOUND, on_clicked=clicked)
            await asyncio.wait_for(sent, TIMEOUT)
        except Exception as exc:  # no D-Bus session, no notification daemon, denied permission: never fatal
            log.info("desktop notification unavailable (%s); not trying again this run", exc)
            self.disabled = True
            return False
        self.sent += 1
        return True


notifier = Notifier()


def raise_window() -> None:
    """Bring the app's window to the front (the native window; a browser's tab cannot be raised from here)."""
    window = app.native.main_window
    if window is not None:
        window.restore()
        window.show()


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
