"""``StatusBoard``: what the engine publishes — the current ``SyncStatus`` and the ``EventHub`` that fans
every event out to the UI. A status change is itself an event (``StatusChanged``), emitted only when
something changed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sync import events
from sync.cache import Cache
from sync.cache.db import CORE_TABLES as PHASES  # the initial sync's progress steps
from sync.events import EventHub
from sync.models import SyncStatus


class StatusBoard:
    def __init__(self) -> None:
        self.current = SyncStatus("offline", 0, 0, None, None)
        self.events = EventHub()
        self.emit = self.events.emit

    def set(self, **changes: Any) -> None:
        new = replace(self.current, **changes)
        if new != self.current:
            self.current = new
            self.emit(events.StatusChanged(new))

    def count(self, cache: Cache | None) -> None:
        """The outbox's pending and failed counts from the signed-in user's cache (nothing when none)."""
        if cache is not None:
            pending, failed = cache.counts()
            self.set(pending=pending, failed=failed)

    def emit_with_progress(self, event: events.Event) -> None:
        """During the initial sync, SyncProgress also moves ``status.progress`` (by table: the server
        does not say how many rows are coming, so the fraction is per phase, not per row)."""
        if isinstance(event, events.SyncProgress) and event.overall is not None:
            self.set(progress=event.overall)  # rows done of the server's count (sync/pull.py)
        elif isinstance(event, events.SyncProgress) and event.phase in PHASES:
            finished = 1 if event.total is not None else 0
            self.set(progress=(PHASES.index(event.phase) + finished) / len(PHASES))
        self.emit(event)
