"""Server rows written outside the pulls go in under their rules: a row the cache cannot take is set aside.

sync17 made the pulls, realtime, backfills and the initial sync's staging set such a row aside; three other writes
of server rows still failed whole on one: the ticket row a push gets back (the acknowledgement failed with it, so the
change stayed queued and was sent again at every round, its answer failing again), the SLA settings read whole (the
pull failed at every round), and ``WorkspaceCache.apply_rows`` (a canned reply's file the app wrote online: the
server had it, the cache refused it whole). The server's checks refuse the rows used here (a timestamp that is no
timestamp, a null name), so these are tested on the cache; each test fails before.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sync.cache import Cache
from sync.workspace_rows import RowWrite
from tests.test_far_timestamps import ticket_row

TS = "2026-11-30T12:00:00.000000+00:00"


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[Cache]:
    opened = Cache.open(tmp_path / "cache.db", str(uuid.uuid4()), "admin")
    try:
        yield opened
    finally:
        opened.close()


async def test_a_pushed_ticket_change_whose_answer_the_cache_cannot_take_is_acknowledged_and_the_row_set_aside(
    cache: Cache,
) -> None:
    ticket = str(uuid.uuid4())
    await cache.apply_page("tickets", [ticket_row(ticket)], (1, 1), initial=False)
    cache.queue_ticket_update(ticket, {"status": "pending"})
    entries = await cache.queued(10)
    assert [e.entity_id for e in entries] == [ticket]
    answer = ticket_row(ticket, status="pending", updated_at="not a time")
    await cache.acknowledge(entries, server_tickets=[answer])  # before: ValueError, the entry stayed queued
    assert cache.counts() == (0, 0), "the server has the change: it is not sent again"
    assert [(s.table, s.row_id) for s in cache.set_aside] == [("tickets", ticket)]
    note = cache.set_aside_note()
    assert note is not None and "not a timestamp" in note
    await cache.apply_server_ticket(ticket_row(ticket, status="pending"))  # the row as the server sends it next
    assert cache.set_aside == [], "a row that applies is no longer said to be skipped"
    found = cache.ticket(ticket)
    assert found is not None and found.status == "pending"


async def test_a_ticket_the_server_answers_a_lookup_with_is_set_aside_when_the_cache_cannot_take_it(
    cache: Cache,
) -> None:
    ticket = str(uuid.uuid4())
    await cache.apply_server_ticket(ticket_row(ticket, created_at="never"))  # before: ValueError
    assert cache.ticket(ticket) is None
    assert [(s.table, s.row_id) for s in cache.set_aside] == [("tickets", ticket)]


def _holiday(day: str, name: Any = "a holiday") -> dict[str, Any]:
    return {"day": day, "name": name}


async def test_an_sla_set_with_a_row_the_cache_cannot_take_keeps_the_previous_set_and_says_so(cache: Cache) -> None:
    ws = cache.workspace
    assert await ws.apply_snapshot("sla_holidays", [_holiday("2026-12-25")])
    new = [_holiday("2027-01-01"), _holiday("2027-12-25", name=None)]
    assert not await ws.apply_snapshot("sla_holidays", new)  # before: IntegrityError, the pull failed each round
    assert [h.day for h in ws.sla_holidays()] == ["2026-12-25"], "the previous set is kept whole"
    assert [(s.table, s.row_id) for s in cache.set_aside] == [("sla_holidays", "2027-12-25")]
    note = cache.set_aside_note()
    assert note is not None and "sla_holidays" in note
    assert await ws.apply_snapshot("sla_holidays", [_holiday("2027-01-01"), _holiday("2027-12-25")])
    assert [h.day for h in ws.sla_holidays()] == ["2027-01-01", "2027-12-25"]
    assert cache.set_aside == [], "the set went in: nothing is said to be skipped"


async def test_workspace_rows_written_online_set_a_bad_row_aside_and_take_the_others(cache: Cache) -> None:
    reply = str(uuid.uuid4())
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())

    def file(file_id: str, created_at: str) -> dict[str, Any]:
        return {
            "id": file_id,
            "canned_reply_id": reply,
            "name": f"{file_id}.txt",
            "mime": "text/plain",
            "size": 3,
            "sha256": "0" * 64,
            "object_path": f"canned/{reply}/{file_id}.txt",
            "created_at": created_at,
            "deleted_at": None,
        }

    await cache.workspace.apply_rows("canned_reply_files", [file(good, TS), file(bad, "not a time")])  # before: raised
    assert [r["id"] for r in cache.workspace.rows("canned_reply_files")] == [good]
    assert [(s.table, s.row_id) for s in cache.set_aside] == [("canned_reply_files", bad)]


async def test_a_refused_workspace_change_whose_server_row_the_cache_cannot_take_leaves_the_outbox(
    cache: Cache,
) -> None:
    """The server's row sent with a refusal is written back over the user's; one the cache cannot take failed the
    write, so the refused change stayed queued and was sent (and refused) again at every round."""
    tag = str(uuid.uuid4())
    await cache.workspace.apply_rows("tags", [{"id": tag, "name": "vip", "color": "#112233", "updated_at": TS}])
    cache.workspace.queue([RowWrite("tags", "update", {"id": tag, "name": "VIP"})])
    entries = await cache.queued(10)
    assert len(entries) == 1
    server = {"id": tag, "name": "vip", "color": "#112233", "updated_at": "not a time"}
    await cache.workspace.refused(entries[0], "only admins may rename tags", server)  # before: ValueError
    assert cache.counts() == (0, 0), "the refused change is not sent again"
    assert [(s.table, s.row_id) for s in cache.set_aside] == [("tags", tag)]
    [row] = cache.workspace.rows("tags")
    assert row["local_state"] == "failed" and row["error"] == "only admins may rename tags"
