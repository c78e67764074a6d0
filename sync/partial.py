"""Partial sync for the signed-in user: the cached scope, and what lies outside it fetched on demand
(the rules and the server calls are in sync/scope.py).

On demand also covers the first sync: a big desk's first pull takes minutes, and a thread the user opens
meanwhile is fetched at once by ticket id (``fetch_thread_now``) instead of when the cursor reaches it; the
pull brings the same rows again later, which changes nothing (rows are upserted by id)."""

from __future__ import annotations

from collections.abc import Callable

from sync import events, scope
from sync.account import Account
from sync.cache import Cache
from sync.models import SearchHit
from sync.pull import Puller
from sync.remote import Remote


class PartialSync:
    def __init__(
        self,
        cache: Cache,
        remote: Remote,
        puller: Puller,
        account: Account,
        *,
        emit: Callable[[events.Event], None],
        want_pull: Callable[[], None],
    ) -> None:
        self.cache, self.remote, self.puller, self.account = cache, remote, puller, account
        self.emit, self.want_pull = emit, want_pull

    def days(self) -> int | None:
        """None: everything is cached; N: open/pending tickets plus those active in the last N days."""
        return self.cache.sync_scope_days()

    def set_days(self, days: int | None) -> None:
        """Widen or narrow the scope (ValueError for a bad value); the next pull follows it."""
        self.cache.set_sync_scope_days(scope.check_days(days), scope.SCOPED_TABLES)
        self.want_pull()

    async def fetch_ticket(self, ticket_id: str) -> bool:
        """Cache a ticket and its thread that the partial sync left on the server (False: not visible)."""
        await self.account.ensure_fresh()
        return await self.account.with_refresh(
            lambda: scope.fetch_ticket(self.cache, self.remote, self.puller.backfill, ticket_id, self.emit)
        )

    async def search_server(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Full-text search on the server (RLS applies), for what a partial cache does not hold."""
        await self.account.ensure_fresh()
        return await self.account.with_refresh(lambda: scope.search(self.remote, query, limit))

    async def fetch_thread_now(self, ticket_id: str) -> bool:
        """During the first sync: fetch this ticket's thread, files and read markers now (the one the user
        opened comes first). Returns whether it fetched (False once the first sync is done: nothing to do)."""
        if self.cache.initial_sync_done():
            return False
        await self.account.ensure_fresh()
        await self.account.with_refresh(lambda: self.puller.backfill(ticket_id, self.emit))
        return True
