"""The cache's queries over a list of ids are one SQL text whatever the list's length (sync/cache/id_lists.py), so
a connection's prepared statements do not pile up with every new length (issue 15, the soak's client memory).

Before, ``in (?, ?, …)`` had a placeholder per id: each length was a statement of its own, kept in Python's
statement cache (128 per connection, ~10 KB each here, 118 KB at 500 ids), and SQLite's heap grew with every
length a push batch, a pull page or a page of inbox rows happened to have.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.soak_memory import sqlite_heap, sqlite_page_cache
from sync.cache import Cache, history, reads, workspace_reads

TS = "2026-11-20T10:00:00.000000+00:00"
LENGTHS = range(1, 41)


def _not_pages() -> int:
    """SQLite's heap less its page caches (the data read or written): schemas, statements, and the rest."""
    return sqlite_heap() - sqlite_page_cache()


def _growth(call: Callable[[list[str]], object], ids: list[str]) -> int:
    """SQLite's heap growth, page caches aside, over calls with every length of ``LENGTHS``."""
    call(ids[:1])
    call(ids[: max(LENGTHS)])
    before = _not_pages()
    for n in LENGTHS:
        call(ids[:n])
    return _not_pages() - before


@pytest.mark.parametrize(
    "query",
    [
        reads.uploaded_attachments,
        workspace_reads.tags_of,
        workspace_reads.sla_of,
        lambda conn, ids: history.landing_tombstones(conn, [{"id": i, "deleted_at": TS} for i in ids]),
    ],
    ids=["uploaded_attachments", "tags_of", "sla_of", "landing_tombstones"],
)
def test_a_query_over_ids_is_one_statement_whatever_their_number(tmp_path: Path, query: Callable) -> None:  # type: ignore[type-arg]
    cache = Cache.open(tmp_path / "cache.sqlite3", str(uuid.uuid4()), "agent")
    try:
        conn = cache._store.reader
        ids = [str(uuid.uuid4()) for _ in LENGTHS]
        grew = _growth(lambda part: query(conn, part), ids)
        assert sqlite_heap() > 0
        assert grew < 64 * 1024, f"SQLite's heap grew by {grew / 1024:.0f} KiB over {len(LENGTHS)} lengths"
    finally:
        cache.close()


async def test_pull_pages_of_every_length_add_no_statements(tmp_path: Path) -> None:
    me = str(uuid.uuid4())
    cache = Cache.open(tmp_path / "cache.sqlite3", me, "agent")
    try:
        ticket = {"id": str(uuid.uuid4()), "customer_id": me, "subject": "s", "status": "open", "priority": "normal"}
        await cache.apply_page(
            "tickets", [ticket | {"created_at": TS, "updated_at": TS, "last_message_at": TS}], (1, 1), initial=False
        )

        def page(n: int) -> list[dict[str, object]]:
            return [
                {"id": str(uuid.uuid4()), "ticket_id": ticket["id"], "sender_id": me, "content": "x", "created_at": TS}
                for _ in range(n)
            ]

        xid = 2
        for n in (1, max(LENGTHS)):  # the statements every page needs, prepared once
            await cache.apply_page("messages", page(n), (xid, xid), initial=False)
            xid += 1
        before = _not_pages()
        for n in LENGTHS:
            await cache.apply_page("messages", page(n), (xid, xid), initial=False)
            xid += 1
        grew = _not_pages() - before
        assert grew < 64 * 1024, f"SQLite's heap grew by {grew / 1024:.0f} KiB over {len(LENGTHS)} page lengths"
    finally:
        cache.close()
