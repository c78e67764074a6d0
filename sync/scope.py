"""Partial sync (issue 15): what a cache holds when it does not hold everything.

The setting is a number of days, kept in the user's cache (``Cache.sync_scope_days``; None = everything,
the default; a new cache takes ``SUPPORTCHAT_SYNC_SCOPE_DAYS`` when that is set). With it, the pull of
``SCOPED_TABLES`` asks the server's ``sync_<table>_scoped`` functions (migration 20261130000510) for the
tickets that are open or pending plus those with activity since that many days ago, and their messages, read
markers and attachments; profiles and the other tables are pulled whole. Same cursors, same pages, same RLS
as the full pull: the server only filters by ticket. Realtime changes are applied whatever the scope (a
change to an old ticket caches it), so the cache holds at least the scope.

What is outside the scope is fetched on demand, never silently missing:

- ``fetch_ticket``: a ticket the cache does not hold (a link, a search hit) is read by id through REST (RLS
  decides whether this user may see it) and its thread backfilled, exactly as when a ticket becomes visible;
  from then on it is cached and kept current like any other.
- ``search``: the server's full-text search (``search_messages``, RLS applied) for what the local index
  cannot know; its hits come back as the same ``SearchHit`` the local search returns.

A ticket that enters the scope later (reopened, a new message) is changed by that write, so the scoped
tickets pull brings it and the usual backfill fetches its older messages. Widening the scope (more days, or
everything) restarts the scoped tables' cursors, so the rows skipped before are pulled; narrowing keeps what
is cached.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sync import events
from sync.decisions import canonical_ts
from sync.models import SearchHit

if TYPE_CHECKING:
    from sync.cache import Cache
    from sync.remote import Remote

# the thread of a ticket, fetched into the cache (``Puller.backfill``; passed in: sync.pull imports this module)
Backfill = Callable[[str, Callable[[events.Event], None]], Awaitable[object]]

log = logging.getLogger(__name__)

SCOPED_TABLES = frozenset({"tickets", "messages", "ticket_reads", "attachments"})
MAX_DAYS = 3650


def check_days(days: int | None) -> int | None:
    """A valid setting or ValueError: None (everything) or 1..MAX_DAYS days."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"keep between 1 and {MAX_DAYS} days of closed tickets, or everything")
    return days


ENV_DEFAULT = "SUPPORTCHAT_SYNC_SCOPE_DAYS"


def apply_default(cache: Cache) -> None:
    """A cache that has never synced takes the default scope of ``SUPPORTCHAT_SYNC_SCOPE_DAYS`` (for a
    deployment that wants every agent's first sync partial); an invalid value is ignored with a warning."""
    raw = os.environ.get(ENV_DEFAULT, "").strip()
    if not raw or cache.initial_sync_done() or cache.sync_scope_days() is not None:
        return
    try:
        days = check_days(int(raw))
    except ValueError:
        log.warning("%s=%r is not a number of days from 1 to %d: syncing everything", ENV_DEFAULT, raw, MAX_DAYS)
        return
    cache.set_sync_scope_days(days, SCOPED_TABLES)


def since(days: int, now: datetime | None = None) -> str:
    """The scope's lower bound on last_message_at, as the server takes it (ISO 8601, UTC)."""
    ts = canonical_ts((now or datetime.now(UTC)) - timedelta(days=days))
    assert ts is not None
    return ts


async def fetch_ticket(
    cache: Cache, remote: Remote, backfill: Backfill, ticket_id: str, emit: Callable[[events.Event], None]
) -> bool:
    """Make sure a ticket and its thread are cached; False when the server does not show it to this user."""
    if cache.has_ticket(ticket_id):
        return True
    row = await remote.ticket(ticket_id)
    if row is None:
        return False
    await cache.apply_server_ticket(row)
    await backfill(ticket_id, emit)
    emit(events.TicketsChanged(frozenset({ticket_id})))
    return True


def _hit(row: dict[str, Any]) -> SearchHit:
    return SearchHit(
        ticket_id=str(row["ticket_id"]),
        message_id=str(row["message_id"]) if row.get("message_id") else None,
        subject=str(row.get("subject") or ""),
        snippet=str(row.get("snippet") or ""),
        created_at=canonical_ts(row.get("created_at")) or "",
    )


async def search(remote: Remote, query: str, limit: int = 50) -> list[SearchHit]:
    """The server's search: subject hits, then message hits, newest first (RLS decides what is found)."""
    text = query.strip()
    if not text:
        return []
    return [_hit(r) for r in await remote.search(text[:200], max(1, min(int(limit), 200)))]
