"""Desktop notifications with sound through `desktop-notifier` (D-Bus on Linux, native APIs on
Windows and macOS). Best effort by design: on a headless box or without a notification service the
call fails and the app carries on; nothing here may raise into the UI."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

TIMEOUT = 5.0


class Notifier:
    def __init__(self) -> None:
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
            await asyncio.wait_for(self._notifier.send(title=title, message=body[:200], sound=DEFAULT_SOUND), TIMEOUT)
        except Exception as exc:  # no D-Bus session, no notification daemon, denied permission: never fatal
            log.info("desktop notification unavailable (%s); not trying again this run", exc)
            self.disabled = True
            return False
        self.sent += 1
        return True


notifier = Notifier()

# a short two-tone chime through Web Audio, so there is a sound even where the OS notification is silent
CHIME_JS = """
try { const c = new (window.AudioContext || window.webkitAudioContext)();
  [660, 880].forEach((f, i) => { const o = c.createOscillator(), g = c.createGain(); o.frequency.value = f;
    g.gain.setValueAtTime(0.08, c.currentTime + i * 0.12); g.gain.exponentialRampToValueAtTime(0.001,
    c.currentTime + i * 0.12 + 0.25); o.connect(g).connect(c.destination); o.start(c.currentTime + i * 0.12);
    o.stop(c.currentTime + i * 0.12 + 0.3); }); } catch (e) {}
"""
