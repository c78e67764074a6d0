"""A value PostgreSQL can store but Python's datetime cannot hold never stops a pull (review16's sync wedge).

`canonical_ts` clamps 'infinity', '-infinity', years past 9999 and BC dates to the cache's first and last instant; a
row the cache still cannot take is set aside (logged, said in the status) and the rest of its page, and the cursor,
go on. The engine test writes such a row as the superuser, past migration 20261214000200's checks, as an older or
compromised server could. Each test here failed before: the parser raised, and the pull failed on that page forever.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from supportchat_app.business_time import Calendar
from supportchat_app.components.sync_status import describe
from sync.cache import Cache
from sync.cache import schema as cache_schema
from sync.cache.db import SET_ASIDE_PER_PAGE
from sync.decisions import EARLIEST_TS, LATEST_TS, canonical_ts
from sync.models import SyncStatus
from sync.workspace_rows import BusinessHours, Holiday
from tests.conftest import Users
from tests.helpers import cache_before
from tests.realtime.support import attach, new_ticket, post
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("infinity", LATEST_TS),
        ("-infinity", EARLIEST_TS),
        ("20000-01-01T00:00:00+00:00", LATEST_TS),  # PostgREST's JSON for a year past 9999
        ("294276-12-31T23:59:59+00:00", LATEST_TS),  # PostgreSQL's last timestamptz
        ("20000-01-01 00:00:00+00", LATEST_TS),  # realtime's text form
        ("0044-03-15T00:00:00+00:00 BC", EARLIEST_TS),
        ("4713-01-01 00:00:00+00 BC", EARLIEST_TS),  # PostgreSQL's first
        ("9999-12-31T23:59:59.999999+00:00", LATEST_TS),  # canonical-looking, past the last instant
        ("0001-01-01T00:00:00+00:00", EARLIEST_TS),
        ("0001-01-01T00:30:00+05:00", EARLIEST_TS),  # before year 1 in UTC
        ("9999-12-31T23:00:00-05:00", LATEST_TS),  # after year 9999 in UTC
        ("2026-11-30T23:42:44.261839+00:00", "2026-11-30T23:42:44.261839+00:00"),
        ("2026-11-30T23:42:44+00:00", "2026-11-30T23:42:44.000000+00:00"),
        ("2026-11-30 23:42:44.2+01", "2026-11-30T22:42:44.200000+00:00"),
        ("0044-03-15T12:00:00+00:00", "0044-03-15T12:00:00.000000+00:00"),  # a real early year keeps its digits
        (None, None),
    ],
)
def test_every_timestamp_postgresql_sends_reads_and_keeps_time_order(sent: str | None, read: str | None) -> None:
    assert canonical_ts(sent) == read
    if read is not None:  # a clamped instant still converts to any local time (the UI's fmt.local)
        moment = datetime.fromisoformat(read)
        assert [moment.astimezone(timezone(timedelta(hours=h))).utcoffset() for h in (-12, 14)] == [
            timedelta(hours=-12),
            timedelta(hours=14),
        ]


def test_datetimes_at_the_ends_of_python_s_range_clamp_instead_of_overflowing() -> None:
    east = datetime(1, 1, 1, 2, tzinfo=timezone(timedelta(hours=5)))
    west = datetime(9999, 12, 31, 22, tzinfo=timezone(timedelta(hours=-5)))
    assert (canonical_ts(east), canonical_ts(west)) == (EARLIEST_TS, LATEST_TS)
    assert EARLIEST_TS < canonical_ts(datetime(1970, 1, 1, tzinfo=UTC)) < LATEST_TS  # type: ignore[operator]


def test_text_that_is_no_timestamp_still_raises() -> None:
    with pytest.raises(ValueError):
        canonical_ts("next tuesday")


def test_a_holiday_on_no_real_day_excludes_nothing_and_breaks_no_calendar() -> None:
    hours = [BusinessHours("h", 1, "09:00:00", "17:00:00")]
    holidays = [Holiday(d, "x") for d in ("infinity", "-infinity", "20000-01-01", "0044-03-15 BC", "2026-12-25")]
    calendar = Calendar.of("UTC", hours, holidays)
    assert calendar is not None and calendar.holidays == frozenset({date(2026, 12, 25)})


def ticket_row(ticket_id: str, **over: Any) -> dict[str, Any]:
    now = "2026-11-30T12:00:00.000000+00:00"
    return {
        "id": ticket_id,
        "customer_id": str(uuid.uuid4()),
        "assignee_id": None,
        "subject": "s",
        "status": "open",
        "priority": "normal",
        "created_at": now,
        "updated_at": now,
        "last_message_at": now,
        "first_response_at": None,
        "resolved_at": None,
        **over,
    }


async def test_a_row_the_cache_cannot_read_is_set_aside_and_the_page_and_cursor_go_on(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache.db", str(uuid.uuid4()), "agent")
    try:
        good, bad, far = (str(uuid.uuid4()) for _ in range(3))
        rows = [ticket_row(good), ticket_row(bad, updated_at="not a time"), ticket_row(far, status="pending")]
        applied = await cache.apply_page("tickets", rows, (7, 3), initial=False)
        assert await cache.cursor("tickets") == (7, 3)
        assert cache.ticket(bad) is None and applied.rows == 3
        assert applied.tickets == {good, far}
        # a snooze's time is its own table's row (migration 20261216000100), clamped the same way
        snooze = {"ticket_id": far, "snoozed_until": "infinity", "change_xid": 7, "change_id": 4}
        await cache.apply_page("ticket_snoozes", [snooze], (7, 4), initial=False)
        ticket = cache.ticket(far)
        assert ticket is not None and ticket.snoozed_until == LATEST_TS
        assert [(s.table, s.row_id) for s in cache.set_aside] == [("tickets", bad)]
        note = cache.set_aside_note()
        assert note is not None and "tickets" in note and "not a time" in note
        label, title = describe(SyncStatus("online", 0, 0, None, note))
        assert label == "Online · a row was skipped" and note in title
    finally:
        cache.close()


async def test_a_page_of_unreadable_rows_fails_whole_and_a_row_read_later_is_no_longer_skipped(tmp_path: Path) -> None:
    """review16b: a page whose every row failed the same way (a column the client does not know, a bug of its own)
    was set aside whole, the cursor moved past it, and the rows were never fetched again. More bad rows than
    ``SET_ASIDE_PER_PAGE`` in one page fail the page instead, its cursor staying; and a row that was set aside and
    comes again readable leaves the status line."""
    cache = Cache.open(tmp_path / "cache.db", str(uuid.uuid4()), "agent")
    try:
        first = await cache.cursor("tickets")
        renamed = [ticket_row(str(uuid.uuid4()), updated_at="not a time") for _ in range(SET_ASIDE_PER_PAGE + 1)]
        with pytest.raises(ValueError):
            await cache.apply_page("tickets", [ticket_row(str(uuid.uuid4())), *renamed], (7, 5), initial=False)
        assert await cache.cursor("tickets") == first and cache.set_aside == [], "the page failed whole"
        bad = str(uuid.uuid4())
        await cache.apply_page("tickets", [ticket_row(bad, updated_at="not a time")], (8, 1), initial=False)
        assert [s.row_id for s in cache.set_aside] == [bad] and cache.set_aside_note() is not None
        await cache.apply_page("tickets", [ticket_row(bad)], (9, 1), initial=False)  # changed on the server
        assert cache.ticket(bad) is not None
        assert cache.set_aside == [] and cache.set_aside_note() is None
    finally:
        cache.close()


async def test_a_ticket_at_infinity_from_the_server_stops_no_pull(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    """The superuser puts a ticket's last_message_at at 'infinity' (no check guards it: the server's trigger keeps it
    for API roles); a later message on another ticket still arrives, and the wedged ticket reads as the latest."""
    wedged = new_ticket(stack.db_url, users.customer, subject="wedged")
    other = new_ticket(stack.db_url, users.customer, subject="other")
    engine = await engines.open(users.customer)
    await engine.pull()
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("update public.tickets set last_message_at = 'infinity' where id = %s", (wedged,))
    post(stack.db_url, users.agent, other, "after the wedge")
    await engine.pull()
    ticket = engine.cache.ticket(wedged)
    assert ticket is not None and ticket.last_message_at == LATEST_TS
    assert "after the wedge" in [m.content for m in engine.cache.thread(other)]
    assert engine.status.last_error is None


async def test_an_attachments_created_at_is_stored_as_every_other_timestamp(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    """sync17b: an attachment's ``created_at`` was stored as the server sent it — 'infinity' as that word, a trimmed
    fraction as trimmed — so files sorted by their text, not their instant; now it is ``canonical_ts``'s."""
    ticket = new_ticket(stack.db_url, users.customer, subject="far files")
    message = post(stack.db_url, users.customer, ticket, "two files")
    far, near = (attach(stack.db_url, users.customer, ticket, message, n) for n in ("far.txt", "near.txt"))
    with psycopg.connect(stack.db_url) as conn:  # the superuser, past the trigger that sets the server's clock
        conn.execute("set local session_replication_role = replica")
        conn.execute("update public.attachments set created_at = 'infinity' where id = %s", (far,))
        conn.execute("update public.attachments set created_at = '2026-11-30 12:00:00.5+00' where id = %s", (near,))
    try:
        engine = await engines.open(users.customer)
        await engine.pull()
        stored = {a["id"]: a["created_at"] for a in engine.cache.attachments(message)}
        assert stored == {far: LATEST_TS, near: "2026-11-30T12:00:00.500000+00:00"}
    finally:
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            conn.execute("delete from public.attachments where id = any(%s)", ([far, near],))


def test_step_18_stores_the_attachments_created_at_of_an_older_cache_as_canonical(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = cache_before(path, cache_schema.V18)
    sent = {
        "a": "infinity",
        "b": "2026-11-30 12:00:00.5+00",  # realtime's text form
        "c": "2026-11-30T12:00:00.45+00:00",  # a pull's trimmed fraction
        "d": "not a time",  # kept as it was: the step must not fail the cache
    }
    for n, created_at in sent.items():
        conn.execute(
            "insert into attachments (id, message_id, ticket_id, uploader_id, name, mime, size, sha256, object_path,"
            " created_at) values (?, 'm', 't', 'u', ?, '', 0, '', ?, ?)",
            (n, n, f"t/m/{n}", created_at),
        )
    conn.commit()
    conn.close()
    cache = Cache.open(path, str(uuid.uuid4()), "agent")
    try:
        assert [(a["id"], a["created_at"]) for a in cache.attachments("m")] == [
            ("c", "2026-11-30T12:00:00.450000+00:00"),
            ("b", "2026-11-30T12:00:00.500000+00:00"),
            ("a", LATEST_TS),
            ("d", "not a time"),
        ]
    finally:
        cache.close()


async def test_a_message_past_year_9999_is_staged_and_moved_as_the_last_instant(
    stack: StackProcess, users: Users, engines: EngineFactory
) -> None:
    """sync17b: ``sync_message_rows`` writes a year past 9999 with five digits ('20000-01-01T…'), which the initial
    sync staged and moved as sent: the message sorted before every real one. The move now reads it as the last
    instant, as every other path does."""
    ticket = new_ticket(stack.db_url, users.customer2, subject="far staged")
    post(stack.db_url, users.customer2, ticket, "now")
    far = post(stack.db_url, users.customer2, ticket, "far")
    with psycopg.connect(stack.db_url) as conn:  # the superuser, past the trigger that sets the server's clock
        conn.execute("set local session_replication_role = replica")
        conn.execute("update public.messages set created_at = '20000-01-01 00:00:00+00' where id = %s", (far,))
    try:
        engine = await engines.open(users.customer2)  # a new device: its first pull stages the messages
        await engine.sync_once()
        assert engine.cache.initial_sync_done()
        assert [(m.content, m.created_at) for m in engine.cache.thread(ticket)][-1] == ("far", LATEST_TS)
        assert [m.content for m in engine.cache.thread(ticket)] == ["now", "far"]
    finally:  # the customer's later devices in other tests would hold it too
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            conn.execute("delete from public.messages where id = %s", (far,))
