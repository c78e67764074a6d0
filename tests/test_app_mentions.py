"""Mentions (issue 14, item 8) through NiceGUI's simulated `User` on the real stack: `@` in an internal note
offers staff by name and writes the server's mention syntax; the mentioned admin gets a desktop notification
and a count (header and inbox sidebar), finds it in the Mentions view, and opening it opens the ticket and
marks it seen on the server. The email goes through the notifications trigger (20261129000520), checked here
as the queued row."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from nicegui.testing.user_interaction import UserInteraction

from supportchat_app.components.mentions import display, suggestions
from supportchat_app.notifier import notifier
from sync.models import Profile
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    another_user,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    eventually,
    running_app,
    seed_ticket,
    sign_in,
)
from tests.test_sync_support import sql


def test_suggestions_and_display() -> None:
    staff = [Profile("a", "agent", "Carol Diaz"), Profile("b", "admin", "Dave Carter"), Profile("me", "agent", "Me")]
    found = suggestions("please look @car", staff, "me")
    assert found is not None and found[0] == "car" and [p.id for p in found[1]] == ["a", "b"]  # name start first
    assert suggestions("mail me at x@car", staff, "me") is None  # an address, not a mention
    assert [p.id for p in suggestions("hey @Dave C", staff, "me")[1]] == ["b"]  # type: ignore[index]
    assert suggestions("no at sign", staff, "me") is None
    assert display("ping @[Carol Diaz](0b7e0c9e-8a4f-4c55-9b44-5d4c0d1b2e3f) now") == "ping @Carol Diaz now"


async def test_mention_an_admin_in_a_note_and_they_are_told(
    app_data: Path,
    users: Users,
    stack: StackProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tid = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        f"Mention {time.time_ns()}",
        [(users.customer, "strange error", False)],
    )
    async with running_app() as admin:
        await sign_in(admin, users.admin)
        agent = another_user()
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={tid}")
        await agent.should_see(marker="composer", retries=WAIT)
        agent.find(marker="composer-mode").elements.pop().value = "note"
        agent.find(marker="composer").type(f"Could you look? @{users.admin.name}")
        await agent.should_see(marker="mention-option", retries=WAIT)
        option = next(o for o in agent.find(marker="mention-option").elements if o.text == users.admin.name)
        UserInteraction(agent, {option}, None).click()
        text = agent.find(marker="composer").elements.pop().value
        assert text == f"Could you look? @[{users.admin.name}]({users.admin.id}) "
        # the desktop notifications asked for from here on, by title (the admin's app may be told before the agent's
        # bubble shows: a count of attempts read after it missed the mention on a fast machine)
        told: list[str] = []
        real = notifier.notify

        async def recording(title: str, body: str, on_clicked: Callable[[], None] | None = None) -> bool:
            told.append(title)
            return await real(title, body, on_clicked)

        monkeypatch.setattr(notifier, "notify", recording)
        agent.find(marker="composer").trigger("keydown", {"value": text, "resolve": False})
        shown = f"Could you look? @{users.admin.name}"
        await eventually(lambda: bubble_with(agent, shown) or bubble_with(agent, shown + " "), "the note as @Name")

        await eventually(
            lambda: (
                sql(
                    stack.db_url,
                    "select count(*) from mentions where ticket_id = %s and mentioned_id = %s",
                    tid,
                    users.admin.id,
                )
                == [(1,)]
            ),
            "the mention",
            60,
        )
        assert sql(
            stack.db_url,
            "select count(*) from notifications where ticket_id = %s and recipient_id = %s and reason = 'mention'",
            tid,
            users.admin.id,
        ) == [(1,)]  # the email the notify worker sends
        mentioned = f"{users.agent.name} mentioned you"
        await eventually(lambda: mentioned in told, "a desktop notification", 60)
        await eventually(lambda: admin.find(marker="mentions-count").elements.pop().text != "0", "the count")
        await admin.should_see(marker="count-mentions", retries=WAIT)  # the inbox sidebar's Mentions entry
        admin.find(marker="view-mentions").click()
        await admin.should_see(marker="mention-unseen", retries=WAIT)
        subject = sql(stack.db_url, "select subject from tickets where id = %s", tid)[0][0]
        row = next(
            r
            for r in admin.find(marker="mention-row").elements
            if any(subject in getattr(d, "text", "") for d in r.descendants())
        )
        UserInteraction(admin, {row}, None).click()
        await eventually(lambda: bubble_with(admin, shown) or bubble_with(admin, shown + " "), "the ticket opened")
        await eventually(
            lambda: (
                sql(
                    stack.db_url,
                    "select seen_at is not null from mentions where ticket_id = %s and mentioned_id = %s",
                    tid,
                    users.admin.id,
                )
                == [(True,)]
            ),
            "seen",
            60,
        )
