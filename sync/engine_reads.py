"""The engine's read half: synchronous queries of the local cache for the UI (sync/queries.py),
safe to call on the event loop — indexed, no network. Mixed into SyncEngine."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from sync import queries
from sync.errors import AuthError
from sync.models import LocalUser, Message, Profile, SearchHit, Ticket
from sync.store import Store


class ReadsMixin:
    _store: Store | None
    user: LocalUser | None

    # --- reads (synchronous, cache only) -----------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        if self._store is None or self.user is None:
            raise AuthError("not signed in", refused=True)
        return self._store.reader

    def inbox(self, view: str = "mine", statuses: Iterable[str] | None = None,
              priorities: Iterable[str] | None = None, limit: int = 200) -> list[Ticket]:
        conn = self._reader()
        assert self.user is not None
        return queries.inbox(conn, self.user.id, self.user.role, view=view, statuses=statuses, priorities=priorities,
                             limit=limit)

    def ticket(self, ticket_id: str) -> Ticket | None:
        conn = self._reader()
        assert self.user is not None
        return queries.ticket(conn, self.user.id, self.user.role, ticket_id)

    def thread(self, ticket_id: str, limit: int = 50, before: tuple[str, str] | None = None) -> list[Message]:
        return queries.thread(self._reader(), ticket_id, limit, before)

    def message(self, message_id: str) -> Message | None:
        return queries.message(self._reader(), message_id)

    def count_thread(self, ticket_id: str) -> int:
        return queries.count_thread(self._reader(), ticket_id)

    def profiles(self) -> dict[str, Profile]:
        return queries.profiles(self._reader())

    def agents(self) -> list[Profile]:
        return queries.agents(self._reader())

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        return queries.search(self._reader(), query, limit)

    def read_marker(self, ticket_id: str, user_id: str) -> str | None:
        return queries.read_marker(self._reader(), ticket_id, user_id)

    def get_draft(self, ticket_id: str) -> str:
        return queries.draft(self._reader(), ticket_id)

    def outbox(self) -> list[dict[str, Any]]:
        return queries.outbox(self._reader())

