"""The status bar's words (supportchat_app/components/sync_status.py): live updates interrupted and caught up are
said beside "Online" only; the other states read as before."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from supportchat_app.components.sync_status import describe
from sync.models import SyncStatus


def status(**changes: Any) -> SyncStatus:
    return replace(SyncStatus("online", 0, 0, None, None), **changes)


def test_online_says_when_live_updates_were_interrupted_and_caught_up() -> None:
    assert describe(status()) == ("Online", "Online")
    assert describe(status(live="interrupted"))[0] == "Online · Live updates interrupted — catching up"
    assert describe(status(live="caught-up"))[0] == "Online · Caught up after a pause in live updates"


def test_other_states_read_as_before_whatever_realtime_did() -> None:
    assert describe(status(state="offline", live="interrupted", last_error="timed out")) == (
        "Offline",
        "Offline — your changes are kept and sent when the connection is back (timed out)",
    )
    assert describe(status(state="needs-sign-in", live="interrupted", last_error="Session expired")) == (
        "Signed out — sign in again to keep syncing · Session expired",
        "Signed out — sign in again to keep syncing",
    )
    assert describe(status(state="connecting", live="caught-up"))[0] == "Connecting…"
