"""The agent workspace in the app (issue 14) through NiceGUI's simulated `User` on the real stack: the `/`
canned-reply picker with variables and a fill-in field (online and offline), the canned replies page, tags
on a ticket and the inbox's tag filter and saved views with unread counts, snooze (the ticket leaves the
inbox for the Snoozed list), and SLA badges with the "Breaching soon" list.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from supportchat_app import fmt
from supportchat_app.components.canned_picker import CannedPicker
from sync.events import WorkspaceChanged
from sync.workspace_rows import SNAPSHOT_TABLES, InboxFilter
from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.inbox import open_row, row_of, rows_of, sla_state
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    send,
    sign_in,
)
from tests.test_sync_support import server_snooze, sql

pytestmark = pytest.mark.timeout(240)


def _picker(user: object) -> CannedPicker:
    return next(iter(user.find(marker="canned-picker").elements))  # type: ignore[attr-defined]


def _composer_text(user: object) -> str:
    return str(next(iter(user.find(marker="composer").elements)).value or "")  # type: ignore[attr-defined]


def _rows(user: object) -> set[str]:
    """Ticket ids of the inbox rows on the page."""
    return set(rows_of(user))  # type: ignore[arg-type]


async def _canned_flow(agent: object, users: Users, stack: StackProcess, ticket: str, title: str) -> None:
    agent.find(marker="canned-open").click()  # type: ignore[attr-defined]
    agent.find(marker="canned-query").type("refnd ordr")  # type: ignore[attr-defined]
    await agent.should_see(marker=f"canned-{title}", retries=WAIT)  # type: ignore[attr-defined]
    picker = _picker(agent)
    assert picker.results and picker.results[0].title == title  # fuzzy: typos and all
    agent.find(marker=f"canned-{title}").click()  # type: ignore[attr-defined]
    await agent.should_see(marker="field-order number", retries=WAIT)  # type: ignore[attr-defined]
    agent.find(marker="field-order number").type("A-42")  # type: ignore[attr-defined]
    agent.find(marker="canned-insert").click()  # type: ignore[attr-defined]
    first = users.customer.name.split(" ")[0]
    await eventually(
        lambda: _composer_text(agent) == f"Hi {first}, order A-42 is refunded (#{ticket[:8]}).",
        "the filled reply in the composer",
    )


async def test_slash_picker_fills_variables_and_fields_online_and_offline(
    app_data: Path, users: Users, stack: StackProcess, proxy: FaultProxy
) -> None:
    title = f"Refund order {uuid.uuid4().hex[:6]}"
    sql(
        stack.db_url,
        "insert into canned_replies (title, body) values (%s, %s)",
        title,
        "Hi {{customer.first_name|there}}, order {{order number}} is refunded (#{{ticket.id}}).",
    )
    ticket = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        "Where is my refund?",
        [(users.customer, "I want my money back", False)],
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        engine = engine_of(agent)
        await eventually(lambda: any(r.title == title for r in engine.workspace.canned_replies()), "the reply")
        await agent.open(f"/?t={ticket}")
        await agent.should_see(marker="canned-open", retries=WAIT)
        await _canned_flow(agent, users, stack, ticket, title)
        send(agent, _composer_text(agent))
        await eventually(
            lambda: (
                sql(
                    stack.db_url,
                    "select count(*) from messages where ticket_id = %s and content like 'Hi %%A-42%%'",
                    ticket,
                )
                == [(1,)]
            ),
            "the reply on the server",
        )

        # offline: the picker reads the cache; the reply waits in the outbox and lands once
        proxy.set_mode("drop")
        await _canned_flow(agent, users, stack, ticket, title)
        send(agent, _composer_text(agent))
        await eventually(lambda: engine.status.pending >= 1, "queued offline")
        proxy.set_mode("pass")
        engine.wake()
        await eventually(
            lambda: (
                sql(
                    stack.db_url,
                    "select count(*) from messages where ticket_id = %s and content like 'Hi %%A-42%%'",
                    ticket,
                )
                == [(2,)]
            ),
            "the offline reply, once",
            timeout=60,
        )


async def test_canned_replies_page_creates_a_personal_reply(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    title = f"Greeting {uuid.uuid4().hex[:6]}"
    async with running_app() as agent:
        await sign_in(agent, users.agent2)
        await agent.open("/canned")
        await agent.should_see(marker="canned-new", retries=WAIT)
        agent.find(marker="canned-new").click()
        agent.find(marker="canned-title").type(title)
        agent.find(marker="canned-body").elements.pop().value = "Hello {{customer.name|there}}!"
        agent.find(marker="canned-shortcut").type("hello")
        assert not agent.find(marker="canned-shared").elements.pop().enabled  # shared ones are the admins'
        agent.find(marker="canned-save").click()
        await agent.should_see(marker=f"canned-row-{title}", retries=WAIT)
        await eventually(
            lambda: (
                sql(stack.db_url, "select owner_id::text, shortcut from canned_replies where title = %s", title)
                == [(users.agent2.id, "hello")]
            ),
            "the reply on the server",
            timeout=60,
        )


async def test_tags_filter_and_saved_view_with_unread_count_offline_too(
    app_data: Path, users: Users, stack: StackProcess, proxy: FaultProxy
) -> None:
    name = f"vip{uuid.uuid4().hex[:5]}"
    tag = sql(stack.db_url, "insert into tags (name, color) values (%s, '#f59e0b') returning id::text", name)[0][0]
    tagged = seed_ticket(stack.db_url, users.customer, users.agent, "Tag me", [(users.customer, "hello", False)])
    other = seed_ticket(stack.db_url, users.customer, users.agent, "Leave me", [(users.customer, "hi", False)])
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        engine = engine_of(agent)
        await eventually(lambda: any(t.id == tag for t in engine.workspace.tags()), "the tag")
        await agent.open(f"/?t={tagged}")
        await agent.should_see(marker="add-tag", retries=WAIT)
        # the workspace's change event fires for every synced settings row (an SLA snapshot pull, say); the tag box
        # must not be drawn again for one that changes neither the ticket's tags nor the choice: a redraw drops
        # what the agent is typing in it
        box = agent.find(marker="add-tag").elements.pop()
        engine.events.emit(WorkspaceChanged(frozenset(SNAPSHOT_TABLES)))  # its subscribers run at once
        assert agent.find(marker="add-tag").elements == {box}
        proxy.set_mode("drop")  # tagging works offline: it shows at once and syncs later
        agent.find(marker="add-tag").elements.pop().value = tag
        await agent.should_see(marker=f"tag-{name}", retries=WAIT)
        assert [t.name for t in engine.workspace.tags_of([tagged])[tagged]] == [name]
        # the inbox filtered by the tag shows only that ticket
        agent.find(marker="tag-filter").elements.pop().value = [tag]
        await eventually(lambda: _rows(agent) == {tagged}, "the tag filter")
        # saved as a view, listed in the sidebar
        agent.find(marker="save-view").click()
        agent.find(marker="view-name").type("VIPs")
        agent.find(marker="view-save").click()
        await agent.should_see(marker="view-VIPs", retries=WAIT)
        proxy.set_mode("pass")
        engine.wake()
        await eventually(
            lambda: (
                sql(
                    stack.db_url, "select removed_at from ticket_tags where ticket_id = %s and tag_id = %s", tagged, tag
                )
                == [(None,)]
            ),
            "the tag on the server",
            timeout=60,
        )
        await eventually(
            lambda: (
                sql(stack.db_url, "select name from saved_views where owner_id = %s and name = 'VIPs'", users.agent.id)
                == [("VIPs",)]
            ),
            "the view on the server",
            timeout=60,
        )
        agent.find(marker="view-inbox").click()
        await eventually(lambda: {tagged, other} <= _rows(agent), "back to the inbox")
        agent.find(marker="view-VIPs").click()
        await eventually(lambda: _rows(agent) == {tagged}, "the saved view applied")
        # a new customer message in the tagged ticket while another one is open: the view counts it unread
        agent.find(marker="view-inbox").click()
        await eventually(lambda: other in _rows(agent), "the other ticket listed")
        open_row(agent, other)  # a click on its row, on the same page: nothing else has the tagged one open
        await eventually(lambda: engine_of(agent).cache.read_marker(other, users.agent.id) is not None, "opened")
        sql(
            stack.db_url,
            "insert into messages (ticket_id, sender_id, content) values (%s, %s, 'more')",
            tagged,
            users.customer.id,
        )
        engine.wake(pull=True)  # realtime may still be reconnecting after the outage; a pull brings it too
        view = next(v for v in engine.workspace.saved_views() if v.name == "VIPs")

        await eventually(
            lambda: engine.workspace.count_unread(InboxFilter.from_json(view.filters, view.sort)) == 1,
            "the view's unread count",
            timeout=60,
        )
        await agent.should_see(marker="count-VIPs", retries=WAIT)
        # untag from the header
        await agent.open(f"/?t={tagged}")
        await agent.should_see(marker=f"untag-{name}", retries=WAIT)
        agent.find(marker=f"untag-{name}").click()
        await eventually(
            lambda: (
                sql(stack.db_url, "select removed_at is not null from ticket_tags where ticket_id = %s", tagged)
                == [(True,)]
            ),
            "untagged on the server",
            timeout=60,
        )


async def test_snooze_moves_the_ticket_to_snoozed_and_sla_badges_show(
    app_data: Path,
    users: Users,
    stack: StackProcess,
) -> None:
    late = seed_ticket(stack.db_url, users.customer, users.agent, "Overdue", [(users.customer, "hello?", False)])
    snooze = seed_ticket(stack.db_url, users.customer, users.agent, "Snooze me", [(users.customer, "later", False)])
    # the server computed a due time; here it is moved into the past, as if an hour had gone by
    sql(
        stack.db_url,
        "update ticket_sla set first_response_due_at = now() - interval '5 minutes' where ticket_id = %s",
        late,
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        engine = engine_of(agent)
        await eventually(lambda: late in engine.workspace.sla_of([late]), "the SLA row")
        await agent.open("/")
        await eventually(lambda: sla_state(agent, late) == "breached", "the row's SLA badge breached")
        agent.find(marker="view-breaching").click()
        await eventually(lambda: late in _rows(agent) and snooze not in _rows(agent), "breaching soon")
        agent.find(marker="view-inbox").click()
        await agent.open(f"/?t={snooze}")
        await agent.should_see(marker="snooze", retries=WAIT)
        agent.find(marker="snooze-In 4 hours").click()
        await eventually(lambda: snooze not in _rows(agent), "gone from the inbox")
        agent.find(marker="view-snoozed").click()
        await eventually(lambda: snooze in _rows(agent), "in the Snoozed list")
        # the row and the header say until when (ux14's walkthrough: the row did not), in the same words
        until = engine.workspace.snoozed_until(snooze)
        said = f"Snoozed until {fmt.wake_time(until)}"
        assert until and said.startswith("Snoozed until ") and len(said) > len("Snoozed until ")
        await eventually(lambda: row_of(agent, snooze).get("snoozed") == said, "the row's snooze line")
        await eventually(lambda: agent.find(marker="snooze").elements.pop().text == said, "the header's")
        await eventually(
            lambda: server_snooze(stack.db_url, snooze, "> now() + interval '3 hours'") == ("pending", True),
            "snoozed on the server",
            timeout=60,
        )


async def test_backspace_in_the_empty_tag_box_removes_the_last_tag(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    """The tag box's Backspace with nothing typed takes the last chip off (as in any chip input); it was untested."""
    names = [f"first{uuid.uuid4().hex[:5]}", f"last{uuid.uuid4().hex[:5]}"]
    tags = [sql(stack.db_url, "insert into tags (name) values (%s) returning id::text", n)[0][0] for n in names]
    ticket = seed_ticket(stack.db_url, users.customer, users.agent, "Backspace", [(users.customer, "hello", False)])
    for tag in tags:
        sql(stack.db_url, "insert into ticket_tags (ticket_id, tag_id) values (%s, %s) returning 1", ticket, tag)
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        engine = engine_of(agent)
        await eventually(lambda: len(engine.workspace.tags_of([ticket]).get(ticket, [])) == 2, "the ticket's tags")
        await agent.open(f"/?t={ticket}")
        await agent.should_see(marker=f"tag-{names[1]}", retries=WAIT)
        agent.find(marker="add-tag").trigger("keydown")  # the browser emits it only when the box is empty
        await eventually(
            lambda: [t.name for t in engine.workspace.tags_of([ticket]).get(ticket, [])] == [names[0]],
            "the last tag removed",
        )
        await agent.should_not_see(marker=f"tag-{names[1]}", retries=WAIT)
        await agent.should_see(marker=f"tag-{names[0]}", retries=WAIT)
