"""The agent workspace's client plumbing (issue 14) on a ``FakeRemote`` (tests/fakes.py): pulling the
workspace tables and SLA settings into the cache, the ``workspace`` outbox kind (exactly once under lost
answers, refusals shown with the server's row and reason), a macro's steps in one local transaction,
snooze as a status change plus a ``ticket_snoozes`` row, and the inbox filtered by tags, snooze and SLA. RLS
itself is proven against the real stack (tests/test_workspace_sync.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sync import RemoteConfig, RetryableError, SyncEngine, events
from sync.cache import Cache
from sync.cache import schema as cache_schema
from sync.clock import Clock
from sync.decisions import canonical_ts
from sync.workspace_rows import InboxFilter, RowWrite, check_write
from tests.fakes import FakeRemote, FakeUser, MemorySessions
from tests.helpers import cache_before

pytestmark = pytest.mark.timeout(30)


@dataclass
class World:
    server: FakeRemote
    admin: FakeUser
    agent: FakeUser
    customer: FakeUser
    tmp: Path
    opened: list[SyncEngine]

    async def engine(self, user: FakeUser) -> tuple[SyncEngine, list[events.Event]]:
        engine = await SyncEngine.open(
            RemoteConfig("http://fake.invalid", "anon-key"),
            self.tmp / user.id,
            remote=self.server,
            sessions=MemorySessions(),
            clock=Clock(wall=self.server.clock, random=lambda: 0.0),
        )
        engine.loop.retry_base, engine.loop.retry_cap = 0.01, 0.05
        log: list[events.Event] = []
        engine.subscribe(log.append)
        await engine.sign_in(user.email, user.password)
        self.opened.append(engine)
        return engine, log

    def add_tag(self, name: str, color: str = "#ff0000") -> str:
        tag_id = str(uuid.uuid4())
        self.server.write(
            "tags",
            {
                "id": tag_id,
                "name": name,
                "color": color,
                "created_at": self.server.stamp(),
                "updated_at": self.server.stamp(),
                "deleted_at": None,
            },
        )
        return tag_id


async def settle(engine: SyncEngine, tries: int = 5) -> None:
    """Sync rounds until one goes through (lost answers make the first ones fail as the network would)."""
    for _ in range(tries - 1):
        try:
            await engine.sync_once()
            return
        except RetryableError:
            continue
    await engine.sync_once()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    server = FakeRemote()
    w = World(
        server,
        server.add_user("admin", "Ada Admin"),
        server.add_user("agent", "Ann Agent"),
        server.add_user("customer", "Carl Customer"),
        tmp_path,
        [],
    )
    yield w
    for engine in w.opened:
        await engine.close()


async def test_pull_brings_workspace_rows_and_sla_settings_to_staff_only(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    billing = world.add_tag("Billing")
    world.server.write(
        "ticket_tags",
        {
            "ticket_id": tid,
            "tag_id": billing,
            "added_by": world.admin.id,
            "added_at": world.server.stamp(),
            "removed_at": None,
        },
    )
    world.server.write(
        "ticket_sla",
        {
            "ticket_id": tid,
            "first_response_due_at": "2026-01-01T01:00:00+00:00",
            "awaiting_reply_since": None,
            "next_response_due_at": None,
            "updated_at": world.server.stamp(),
        },
    )
    world.server.write(
        "sla_targets",
        {"priority": "urgent", "first_response_minutes": 60, "next_response_minutes": 30, "updated_at": None},
    )
    world.server.tables["sla_settings"]["True"] = {"id": True, "timezone": "Europe/Paris", "updated_at": None}
    agent, log = await world.engine(world.agent)
    await agent.sync_once()
    ws = agent.workspace
    assert [t.name for t in ws.tags()] == ["Billing"]
    assert [t.name for t in ws.tags_of([tid])[tid]] == ["Billing"]
    sla = ws.sla_of([tid])[tid]
    assert sla.due_at == "2026-01-01T01:00:00.000000+00:00"
    assert [(t.priority, t.first_response_minutes) for t in ws.sla_targets()] == [("urgent", 60)]
    assert ws.sla_timezone() == "Europe/Paris"
    assert any(isinstance(e, events.WorkspaceChanged) and "tags" in e.tables for e in log)

    customer, _ = await world.engine(world.customer)
    world.server.calls.clear()
    await customer.sync_once()
    assert not [c for c in world.server.calls if c in ("pull tags", "pull ticket_tags") or c.startswith("select")]
    assert customer.workspace.tags() == []


async def test_tags_created_and_added_offline_arrive_once_despite_lost_answers(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    admin, _ = await world.engine(world.admin)
    await admin.sync_once()
    world.server.offline = True
    ws = admin.workspace
    tag = ws.create_tag("VIP", "#00aa00")
    ws.add_tag(tid, tag)
    assert [t.name for t in ws.tags_of([tid])[tid]] == ["VIP"]
    assert [t.local_state for t in ws.tags()] == ["pending"]
    with pytest.raises(RetryableError):
        await admin.sync_once()
    world.server.offline = False
    world.server.lose_response |= {"insert tags", "upsert ticket_tags"}
    await settle(admin)
    assert list(world.server.tables["tags"]) == [tag]
    assert world.server.tables["ticket_tags"][f"{tid}:{tag}"]["removed_at"] is None
    assert admin.cache.counts() == (0, 0)
    assert [t.local_state for t in ws.tags()] == ["sent"]

    ws.remove_tag(tid, tag)
    assert ws.tags_of([tid]) == {}
    world.server.lose_response.add("update ticket_tags")
    await settle(admin)
    assert world.server.tables["ticket_tags"][f"{tid}:{tag}"]["removed_at"] is not None
    ws.add_tag(tid, tag)  # re-adding after a removal clears it
    await admin.sync_once()
    assert world.server.tables["ticket_tags"][f"{tid}:{tag}"]["removed_at"] is None
    assert [t.name for t in ws.tags_of([tid])[tid]] == ["VIP"]


async def test_refused_change_shows_the_server_row_with_the_reason(world: World) -> None:
    agent, log = await world.engine(world.agent)
    await agent.sync_once()
    ws = agent.workspace
    mine = ws.save_canned_reply("Greeting", "Hello {{customer.name}}")
    await agent.sync_once()
    assert world.server.tables["canned_replies"][mine]["body"] == "Hello {{customer.name}}"
    # the server now refuses changes to it (as RLS would for someone else's reply): the edit is dropped
    world.server.refuse = lambda table, row: "denied" if table == "canned_replies" else None
    ws.save_canned_reply("Greeting", "Changed", reply_id=mine)
    assert ws.canned_replies()[0].body == "Changed"
    await agent.sync_once()
    reply = ws.canned_replies()[0]
    assert (reply.body, reply.local_state) == ("Hello {{customer.name}}", "failed")
    assert reply.error and "may not change a canned reply" in reply.error
    assert any(isinstance(e, events.Notice) and e.kind == "workspace_refused" for e in log)
    assert agent.cache.counts() == (0, 0)  # nothing stuck in the outbox

    # a refused creation stays visible as failed until discarded
    other = ws.save_canned_reply("Nope", "never lands")
    await agent.sync_once()
    failed = next(r for r in ws.canned_replies() if r.id == other)
    assert failed.local_state == "failed" and failed.error == "denied"
    ws.discard_failed("canned_replies", {"id": other})
    assert [r.id for r in ws.canned_replies()] == [mine]


async def test_a_pending_local_change_is_not_overwritten_by_a_pull(world: World) -> None:
    agent, _ = await world.engine(world.agent)
    ws = agent.workspace
    view = ws.save_view("Urgent", InboxFilter(priorities=("urgent",)))
    world.server.offline = True
    ws.save_view("Urgent mine", InboxFilter(view="mine", priorities=("urgent",)), view_id=view)
    world.server.offline = False
    world.server.tables["saved_views"][view] = {
        **world.server.tables["saved_views"].get(view, {}),
        "id": view,
        "owner_id": world.agent.id,
        "name": "Old",
        "filters": {},
        "sort": "last_message_desc",
        "position": 0,
        "change_xid": 1,
        "change_id": 10_000,
    }
    await agent.pull()  # the server's older row arrives while the rename waits to be pushed
    assert [v.name for v in ws.saved_views()] == ["Urgent mine"]
    await agent.sync_once()
    assert world.server.tables["saved_views"][view]["name"] == "Urgent mine"
    assert [(v.name, v.local_state) for v in ws.saved_views()] == [("Urgent mine", "sent")]


async def test_a_macro_is_one_transaction_in_order_and_all_or_nothing(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    tag = world.add_tag("Refund")
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    ws = agent.workspace
    world.server.offline = True
    ws.apply(
        [
            ws.reply_step(tid, "We refunded you."),
            ws.ticket_step(tid, status="resolved"),
            RowWrite("ticket_tags", "insert", {"ticket_id": tid, "tag_id": tag}),
        ]
    )
    kinds = [e["kind"] for e in agent.cache.outbox()]
    assert kinds == ["message", "ticket_update", "workspace"]
    before = agent.cache.outbox()
    with pytest.raises(ValueError, match="no such ticket"):
        ws.apply([ws.reply_step(tid, "half"), ws.ticket_step(str(uuid.uuid4()), status="closed")])
    assert agent.cache.outbox() == before  # nothing of the failed macro was queued
    assert [m.content for m in agent.cache.thread(tid)] == ["We refunded you."]
    world.server.offline = False
    await agent.sync_once()
    assert [m["content"] for m in world.server.messages_of(tid)] == ["We refunded you."]
    assert world.server.tables["tickets"][tid]["status"] == "resolved"
    assert f"{tid}:{tag}" in world.server.tables["ticket_tags"]


async def test_snooze_is_a_status_change_and_a_snooze_row_and_the_inbox_hides_it_until_then(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    ws = agent.workspace
    until = datetime.now(UTC) + timedelta(hours=2)
    ws.snooze(tid, until)
    inbox = InboxFilter(view="mine")
    assert ws.inbox(inbox) == []
    assert [t.id for t in ws.inbox(InboxFilter(view="mine", snoozed=True))] == [tid]
    assert [t.id for t in ws.inbox(inbox, now=until + timedelta(seconds=1))] == [tid]  # due: back, even offline
    await agent.sync_once()
    server = world.server.tables["tickets"][tid]
    # the time is not on the ticket (a customer reads that row), but in the staff-only ticket_snoozes
    assert server["status"] == "pending" and "snoozed_until" not in server
    assert world.server.tables["ticket_snoozes"][tid]["snoozed_until"] == canonical_ts(until)
    assert ws.snoozed_until(tid) == canonical_ts(until)
    assert agent.cache.counts() == (0, 0)
    ws.unsnooze(tid)
    await agent.sync_once()
    assert world.server.tables["tickets"][tid]["status"] == "open"
    assert world.server.tables["ticket_snoozes"][tid]["snoozed_until"] is None
    assert [t.id for t in ws.inbox(inbox)] == [tid]
    with pytest.raises(ValueError, match="future"):
        ws.snooze(tid, datetime.now(UTC) - timedelta(minutes=1))
    # the server refuses more than a year ahead (migration 20261214000200): said before anything is queued
    with pytest.raises(ValueError, match="at most a year ahead"):
        ws.snooze(tid, datetime.now(UTC) + timedelta(days=366))
    assert agent.cache.counts() == (0, 0)


async def test_a_pulled_snooze_sets_the_cached_time_and_a_pulled_ticket_row_keeps_it(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    until = canonical_ts(datetime.now(UTC) + timedelta(hours=5))
    world.server.write("tickets", {**world.server.tables["tickets"][tid], "status": "pending"})
    world.server.write("ticket_snoozes", {"ticket_id": tid, "snoozed_until": until})
    await agent.sync_once()
    assert agent.workspace.snoozed_until(tid) == until
    # the ticket's own row changes later (no snoozed_until on it): the cached time stays
    world.server.write("tickets", {**world.server.tables["tickets"][tid], "priority": "high"})
    await agent.sync_once()
    assert agent.cache.ticket(tid).priority == "high"
    assert agent.workspace.snoozed_until(tid) == until
    # a snooze of this device still queued wins over the server's row until the server has it
    world.server.offline = True
    mine = datetime.now(UTC) + timedelta(hours=9)
    agent.workspace.snooze(tid, mine)
    world.server.offline = False
    world.server.write("ticket_snoozes", {"ticket_id": tid, "snoozed_until": until})
    await agent.pull()
    assert agent.workspace.snoozed_until(tid) == canonical_ts(mine)
    await agent.sync_once()
    assert world.server.tables["ticket_snoozes"][tid]["snoozed_until"] == canonical_ts(mine)
    assert agent.workspace.snoozed_until(tid) == canonical_ts(mine)


async def test_a_refused_snooze_shows_the_server_s_time_with_a_notice(world: World) -> None:
    tid = world.server.add_ticket(world.customer, world.agent)
    agent, seen = await world.engine(world.agent)
    await agent.sync_once()
    world.server.refuse = lambda table, row: "no" if table == "ticket_snoozes" else None
    agent.workspace.snooze(tid, datetime.now(UTC) + timedelta(hours=1))
    await agent.sync_once()
    assert world.server.tables["tickets"][tid]["status"] == "pending"
    assert agent.workspace.snoozed_until(tid) is None and agent.cache.counts() == (0, 0)
    assert any(isinstance(e, events.Notice) and e.kind == "snooze_refused" for e in seen)


def test_a_holiday_outside_the_server_s_years_is_refused_before_it_is_queued() -> None:
    for day in ("1969-12-31", "3000-01-01"):
        with pytest.raises(ValueError, match="a holiday is a day from 1970 to 2999"):
            check_write(RowWrite("sla_holidays", "insert", {"day": day, "name": ""}))
    assert check_write(RowWrite("sla_holidays", "insert", {"day": "2999-12-31", "name": ""})).row["day"] == "2999-12-31"


async def test_inbox_filters_by_tag_sla_and_counts_unread_per_view(world: World) -> None:
    t1 = world.server.add_ticket(world.customer, world.agent, "one")
    t2 = world.server.add_ticket(world.customer, world.agent, "two")
    vip = world.add_tag("VIP")
    world.server.write(
        "ticket_tags",
        {"ticket_id": t2, "tag_id": vip, "added_by": None, "added_at": world.server.stamp(), "removed_at": None},
    )
    now = datetime.now(UTC)
    for tid, minutes in ((t1, 240), (t2, 10)):
        world.server.write(
            "ticket_sla",
            {
                "ticket_id": tid,
                "first_response_due_at": (now + timedelta(minutes=minutes)).isoformat(),
                "awaiting_reply_since": None,
                "next_response_due_at": None,
                "updated_at": None,
            },
        )
    world.server.write(
        "messages",
        {
            "id": str(uuid.uuid4()),
            "ticket_id": t1,
            "sender_id": world.customer.id,
            "content": "hi",
            "is_internal": False,
            "created_at": world.server.stamp(),
        },
    )
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    ws = agent.workspace
    assert [t.id for t in ws.inbox(InboxFilter(tags=(vip,)))] == [t2]
    assert [t.id for t in ws.inbox(InboxFilter(sort="sla_due_asc"))] == [t2, t1]
    assert [t.id for t in ws.inbox(InboxFilter(breaching_within=30))] == [t2]
    assert ws.count_unread(InboxFilter()) == 1
    assert ws.count_unread(InboxFilter(tags=(vip,))) == 0
    saved = ws.save_view("VIP", InboxFilter(tags=(vip,), sort="sla_due_asc"))
    view = ws.saved_views()[0]
    assert view.id == saved and InboxFilter.from_json(view.filters, view.sort) == InboxFilter(
        tags=(vip,), sort="sla_due_asc"
    )


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (RowWrite("tags", "insert", {"id": str(uuid.uuid4()), "name": " x", "color": "#fff"}), "spaces"),
        (RowWrite("tags", "insert", {"id": str(uuid.uuid4()), "name": "x", "color": "red"}), "#rrggbb"),
        (RowWrite("canned_replies", "insert", {"id": str(uuid.uuid4()), "title": "", "body": "b"}), "title"),
        (
            RowWrite(
                "canned_replies", "insert", {"id": str(uuid.uuid4()), "title": "t", "body": "b", "shortcut": "A B"}
            ),
            "shortcut",
        ),
        (RowWrite("saved_views", "insert", {"id": str(uuid.uuid4()), "name": "v", "sort": "random"}), "sort"),
        (RowWrite("tags", "update", {"id": str(uuid.uuid4()), "deleted_at": "now"}), "no writable column"),
        (RowWrite("tags", "insert", {"id": "1; drop table tags", "name": "x"}), "uuid"),
        (RowWrite("mentions", "delete", {"id": str(uuid.uuid4())}), "not removed"),
        (RowWrite("profiles", "update", {"id": str(uuid.uuid4())}), "not a table"),
        (RowWrite("sla_targets", "update", {"priority": "urgent", "first_response_minutes": -5}), "positive"),
    ],
)
def test_bad_rows_are_refused_before_anything_is_queued(write: RowWrite, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_write(write)


async def test_bad_input_queues_nothing(world: World) -> None:
    agent, _ = await world.engine(world.agent)
    with pytest.raises(ValueError, match="only admins"):
        agent.workspace.create_tag("Mine")
    with pytest.raises(ValueError, match="only admins"):
        agent.workspace.save_canned_reply("Shared", "text", shared=True)
    with pytest.raises(ValueError, match="no such"):
        agent.workspace.edit_customer_note(str(uuid.uuid4()), "text")
    assert agent.cache.outbox() == []


async def test_a_settings_change_announced_during_the_settings_read_is_read_again(world: World) -> None:
    """The SLA settings have no cursor: realtime marks them due and the next pull reads them whole. A change
    announced while that read ran (after its table was read) was marked due, then cleared by the read's end:
    the agent kept the old time zone until the next full pull (test_sla_calendar timed out on it once)."""
    world.server.tables["sla_settings"]["True"] = {"id": True, "timezone": "Europe/Paris", "updated_at": None}
    agent, _ = await world.engine(world.agent)
    await agent.sync_once()
    assert agent.workspace.sla_timezone() == "Europe/Paris"
    puller = agent._parts.puller  # type: ignore[union-attr]
    read = world.server.select_where

    async def changed_while_read(table: str, match: Mapping[str, Any]) -> list[dict[str, Any]]:
        rows = await read(table, match)
        if table == "sla_settings" and rows[0]["timezone"] == "Europe/Paris":
            world.server.tables["sla_settings"]["True"]["timezone"] = "Pacific/Kiritimati"
            puller.snapshots_due = True  # what the live applier does when realtime announces the change
        return rows

    world.server.select_where = changed_while_read  # type: ignore[method-assign]
    puller.snapshots_due = True
    await agent.sync_once()
    assert agent.workspace.sla_timezone() == "Europe/Paris"  # this read ran before the change
    assert puller.snapshots_due, "the change announced during the read is still due"
    await agent.sync_once()
    assert agent.workspace.sla_timezone() == "Pacific/Kiritimati"


async def test_step_20_turns_a_snooze_queued_inside_a_ticket_change_into_a_snooze_entry(tmp_path: Path) -> None:
    """An older version queued a snooze as ticket fields (``wanted.snoozed_until``); the server's ticket has no such
    column since migration 20261216000100, so that change would be refused whole. The step keeps the status change
    and queues the time after it as its own entry."""
    path = tmp_path / "old.sqlite3"
    conn = cache_before(path, cache_schema.V20)
    until = "2030-01-01T09:00:00.000000+00:00"
    entries = [
        (
            "a",
            {
                "id": "a",
                "base": {"status": "open", "snoozed_until": None},
                "wanted": {"status": "pending", "snoozed_until": until},
            },
        ),
        ("b", {"id": "b", "base": {"snoozed_until": until}, "wanted": {"snoozed_until": None}}),
        ("c", {"id": "c", "base": {"priority": "low"}, "wanted": {"priority": "high"}}),
    ]
    for ticket, payload in entries:
        conn.execute(
            "insert into outbox (kind, entity_id, ticket_id, payload, created_at)"
            " values ('ticket_update', ?, ?, ?, '')",
            (ticket, ticket, json.dumps(payload)),
        )
    conn.commit()
    conn.close()
    cache = Cache.open(path, str(uuid.uuid4()), "agent")
    try:
        queued = [(e.kind, e.entity_id, dict(e.payload)) for e in await cache.queued(10)]
    finally:
        cache.close()
    assert queued == [
        ("ticket_update", "a", {"id": "a", "base": {"status": "open"}, "wanted": {"status": "pending"}}),
        ("ticket_update", "c", entries[2][1]),
        ("snooze", "a", {"ticket_id": "a", "snoozed_until": until}),
        ("snooze", "b", {"ticket_id": "b", "snoozed_until": None}),
    ]
