"""The desktop app's flows through NiceGUI's simulated `User`, against a real localbase and the real
sync engine: sign-in per role, live chat between an agent and a customer, offline sending, a refused
message, internal notes hidden from customers, drafts across a restart.

The app runs from `supportchat_app/main.py` exactly as `supportchat` builds it; only the server address
comes from the environment (SUPABASE_URL pointing at a fault proxy in front of the stack, so a test
can cut the network without stopping the shared server).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from nicegui import core, ui
from nicegui.testing.user import User
from nicegui.testing.user_simulation import user_simulation

from supportchat_app import backend as app_backend
from tests.conftest import User as Account
from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.helpers import eventually
from tests.inbox import row_of
from tests.stackproc import StackProcess

MAIN = Path(__file__).resolve().parents[1] / "supportchat_app" / "main.py"
WAIT = 300  # should_see retries of 0.1 s: 30 s for things that cross the network


# fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture
def app_data(proxy: FaultProxy, stack: StackProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "app-data"
    monkeypatch.setenv("SUPABASE_URL", proxy.url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", stack.anon_key)
    monkeypatch.setenv("SUPPORTCHAT_DATA_DIR", str(data))
    monkeypatch.setenv("SUPPORTCHAT_SESSION_STORE", "file")  # never touch the developer's real keyring
    return data


@asynccontextmanager
async def running_app() -> AsyncIterator[User]:
    """The app as `supportchat` builds it, with a first simulated user; leaving shuts it down.

    A failing test's exception is held until the simulation has shut down: thrown into NiceGUI's lifespan
    it would skip the shutdown and leave NiceGUI "already started" for every later test."""
    failure: BaseException | None = None
    async with user_simulation(main_file=MAIN) as user:
        try:
            yield user
        except BaseException as exc:
            failure = exc
    if failure is not None:
        raise failure


def another_user() -> User:
    """A second browser (its own cookies, so its own session slot and cache) on the same running app."""
    return User(httpx.AsyncClient(transport=httpx.ASGITransport(core.app), base_url="http://test"))


# helpers -------------------------------------------------------------------------------------------------
def seed_ticket(
    db_url: str,
    customer: Account,
    assignee: Account | None,
    subject: str,
    messages: list[tuple[Account, str, bool]] = (),
) -> str:  # type: ignore[assignment]
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into public.tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id",
            (customer.id, assignee.id if assignee else None, subject),
        ).fetchone()
        assert row is not None
        for sender, content, internal in messages:
            conn.execute(
                "insert into public.messages (ticket_id, sender_id, content, is_internal) values (%s, %s, %s, %s)",
                (row[0], sender.id, content, internal),
            )
    return str(row[0])


async def sign_in(user: User, account: Account) -> None:
    await user.open("/signin")
    user.find(marker="email").type(account.email)
    user.find(marker="password").type(account.password)
    user.find(marker="signin").click()
    # NiceGUI's simulated navigation is process-global (ui.navigate follows whichever simulated user the
    # harness touched last), so with two users the redirect after sign-in may land on the other one: wait
    # for this user's engine to be signed in and open the inbox for this user explicitly. Tests with two
    # users sign both in before opening tickets.
    await eventually(lambda: getattr(engine_of(user).user, "email", None) == account.email, "sign-in")
    await user.open("/")
    await user.should_see(marker="ticket-count", retries=WAIT)


def bubbles(user: User) -> list[Any]:
    """The message bubbles on the user's page (the thread is all rendered; no scrolling in simulation)."""
    with user:
        return [b for b in ui.context.client.elements.values() if "bubble" in getattr(b, "_markers", [])]


def bubble_with(user: User, text: str) -> Any | None:
    for bubble in bubbles(user):
        if any(getattr(d, "text", None) == text for d in bubble.descendants()):
            return bubble
    return None


def markers_in(element: Any) -> set[str]:
    if element is None:
        return set()
    return {m for d in element.descendants() for m in getattr(d, "_markers", [])}


def send(user: User, text: str, *, resolve: bool = False) -> None:
    """Type into the composer and press Enter (the browser's keydown handler emits the value with the event)."""
    user.find(marker="composer").type(text)
    user.find(marker="composer").trigger("keydown", {"value": text, "resolve": resolve})


def engine_of(user: User) -> Any:
    """The engine behind this simulated browser (its session cookie's id picks the app's session slot)."""
    backend = app_backend.current()
    slot = backend.slots[user.client.request.session["id"]]  # type: ignore[union-attr]
    return backend.workspaces[slot].engine


# tests ---------------------------------------------------------------------------------------------------
async def test_sign_in_as_each_role(app_data: Path, users: Users) -> None:
    async with running_app() as admin:
        await admin.open("/signin")
        admin.find(marker="email").type(users.agent.email)
        admin.find(marker="password").type("wrong password")
        admin.find(marker="signin").click()
        await admin.should_see(marker="signin-error", retries=WAIT)
        await eventually(lambda: bool(admin.find(marker="signin-error").elements.pop().text), "a sign-in error")
        error = admin.find(marker="signin-error").elements.pop().text
        assert "Traceback" not in error and error.endswith(".")

        await sign_in(admin, users.admin)
        assert set(admin.find(marker="views").elements.pop().options) == {"mine", "unassigned", "all"}
        await admin.should_see(users.admin.name)

        agent = another_user()
        await sign_in(agent, users.agent)
        assert set(agent.find(marker="views").elements.pop().options) == {"mine", "unassigned"}
        await agent.should_see(users.agent.name)

        customer = another_user()
        await sign_in(customer, users.customer)
        await customer.should_see("My tickets")
        await customer.should_see(marker="new-ticket")
        await customer.should_not_see(marker="views")
        assert engine_of(customer).user.role == "customer"


async def test_agent_and_customer_see_each_others_messages_live(app_data: Path, users: Users) -> None:
    subject = f"Live chat {time.time_ns()}"
    async with running_app() as customer:
        await sign_in(customer, users.customer2)
        agent = another_user()
        await sign_in(agent, users.agent2)
        await customer.open("/")
        customer.find(marker="new-ticket").click()
        customer.find(marker="new-subject").type(subject)
        customer.find(marker="new-body").type("My screen went blank")
        customer.find(marker="create-ticket").click()
        await customer.should_see(marker="ticket-pane", retries=WAIT)
        await customer.should_see("My screen went blank")

        agent.find(marker="views").elements.pop().value = "unassigned"
        await agent.should_see(subject, retries=WAIT)
        ticket_id = next(str(t.id) for t in engine_of(agent).cache.inbox(view="unassigned") if t.subject == subject)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: bubble_with(agent, "My screen went blank") is not None, "the thread")
        agent.find(marker="take").click()

        send(agent, "Have you tried turning it on again?")
        await eventually(
            lambda: bubble_with(customer, "Have you tried turning it on again?") is not None,
            "the agent's reply to reach the customer live",
        )
        send(customer, "Yes, it works now. Thanks!")
        await eventually(
            lambda: bubble_with(agent, "Yes, it works now. Thanks!") is not None,
            "the customer's answer to reach the agent live",
        )
        # the customer's own message ends up confirmed by the server
        await eventually(
            lambda: "state-sent" in markers_in(bubble_with(customer, "Yes, it works now. Thanks!")),
            "the customer's message to be sent",
        )


def _badges(user: User) -> list[ui.badge]:
    """Every badge of the page, shown or not (``User.find`` fails when none is visible: alone, with no unread
    count anywhere, this test failed at its last step)."""
    with user:
        return [e for e in ui.context.client.elements.values() if isinstance(e, ui.badge)]


def pending_text(bubble: ui.element) -> str:
    """What the bubble's "still in the outbox" line says ("" without one)."""
    return next((d.text for d in bubble.descendants() if "state-pending" in getattr(d, "_markers", [])), "")


async def test_reply_sent_offline_shows_queued_then_sent(
    app_data: Path, users: Users, stack: StackProcess, proxy: FaultProxy
) -> None:
    """A reply written offline says it is queued (ux14's walkthrough: "Sending…" while the header said Offline),
    and is sent when the connection is back. Its inbox row's age is the reply's, not the customer's message's two
    hours before (the ticket's last_message_at moves only when the server has the reply)."""
    ticket_id = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        f"Offline {time.time_ns()}",
        [(users.customer, "Are you there?", False)],
    )
    with psycopg.connect(stack.db_url) as conn, conn.transaction():  # the customer wrote two hours ago
        conn.execute("set local session_replication_role = replica")
        conn.execute("update messages set created_at = now() - interval '2 hours' where ticket_id = %s", (ticket_id,))
        conn.execute("update tickets set last_message_at = now() - interval '2 hours' where id = %s", (ticket_id,))
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: bubble_with(agent, "Are you there?") is not None, "the thread")
        proxy.set_mode("drop")
        send(agent, "Written on a train without signal")
        # the key handler runs as a task and its cache write queues on the writer thread behind what the sync writes:
        # the usual wait (a loaded machine can take more than the 2 s this had); no network is involved (all dropped)
        await eventually(
            lambda: bubble_with(agent, "Written on a train without signal") is not None,
            "the reply to show while offline",
        )
        bubble = bubble_with(agent, "Written on a train without signal")
        assert "state-pending" in markers_in(bubble)
        await asyncio.sleep(1.0)
        assert "state-pending" in markers_in(bubble), "still pending while offline"
        await agent.should_see("Offline", retries=WAIT)
        await eventually(lambda: pending_text(bubble) == "Queued — sends when back online", "queued, offline")
        await eventually(lambda: row_of(agent, ticket_id).get("ago") == "now", "the row's age is the reply's")
        assert row_of(agent, ticket_id)["preview"] == "Written on a train without signal"
        # the always-visible sync status counts what waits (the reply and the read marker)
        await eventually(
            lambda: any(b.visible and b.text.endswith(" pending") for b in _badges(agent)),
            "the pending count",
        )
        proxy.set_mode("pass")
        await eventually(lambda: "state-sent" in markers_in(bubble), "the reply to be sent after reconnecting", 60)
        await agent.should_see("Online", retries=WAIT)
        await eventually(
            lambda: not any(b.visible and b.text.endswith(" pending") for b in _badges(agent)),
            "no pending count",
        )
    with psycopg.connect(stack.db_url) as conn:
        rows = conn.execute(
            "select count(*) from messages where ticket_id = %s and content = %s",
            (ticket_id, "Written on a train without signal"),
        ).fetchone()
    assert rows == (1,)


async def test_refused_message_shows_failed_with_retry_and_discard(
    app_data: Path, users: Users, stack: StackProcess, proxy: FaultProxy
) -> None:
    ticket_id = seed_ticket(
        stack.db_url, users.customer, None, f"Closing {time.time_ns()}", [(users.customer, "First question", False)]
    )
    async with running_app() as customer:
        await sign_in(customer, users.customer)
        await customer.open(f"/?t={ticket_id}")
        await customer.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: bubble_with(customer, "First question") is not None, "the thread")
        proxy.set_mode("drop")  # while the customer writes offline, support closes the ticket
        send(customer, "One more thing")
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            conn.execute("update tickets set status = 'closed' where id = %s", (ticket_id,))
        await eventually(lambda: bubble_with(customer, "One more thing") is not None, "the message (still offline)")
        bubble = bubble_with(customer, "One more thing")
        proxy.set_mode("pass")
        await eventually(lambda: "state-failed" in markers_in(bubble), "the server to refuse the message", 60)
        reason = next(d.text for d in bubble.descendants() if "state-failed" in getattr(d, "_markers", []))
        assert reason.startswith("Not sent: ") and len(reason) > len("Not sent: ") + 5
        assert {"retry", "discard"} <= markers_in(bubble)
        await customer.should_see("1 failed", retries=WAIT)
        # Retry goes to the server again and is refused again; Discard removes it for good
        customer.find(marker="retry").click()
        await eventually(lambda: "state-failed" in markers_in(bubble), "the retried message to fail again", 60)
        customer.find(marker="discard").click()
        await eventually(lambda: bubble_with(customer, "One more thing") is None, "the discarded bubble to go")
        assert engine_of(customer).status.failed == 0


async def test_internal_note_never_appears_for_the_customer(app_data: Path, users: Users, stack: StackProcess) -> None:
    ticket_id = seed_ticket(
        stack.db_url,
        users.customer2,
        users.agent,
        f"Notes {time.time_ns()}",
        [(users.customer2, "Why was I charged twice?", False)],
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        customer = another_user()
        await sign_in(customer, users.customer2)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: bubble_with(agent, "Why was I charged twice?") is not None, "the thread")
        agent.find(marker="composer-mode").elements.pop().value = "note"
        send(agent, "Billing bug BIL-42, do not tell the customer the ticket number")
        await eventually(
            lambda: (
                "state-sent"
                in markers_in(bubble_with(agent, "Billing bug BIL-42, do not tell the customer the ticket number"))
            ),
            "the note",
        )
        note = bubble_with(agent, "Billing bug BIL-42, do not tell the customer the ticket number")
        assert "note" in markers_in(note) and "Internal note" in {getattr(d, "text", "") for d in note.descendants()}
        agent.find(marker="composer-mode").elements.pop().value = "reply"
        send(agent, "We are refunding the second charge.")
        await customer.open(f"/?t={ticket_id}")
        await eventually(
            lambda: bubble_with(customer, "We are refunding the second charge.") is not None, "the agent's public reply"
        )
        await customer.should_not_see("Billing bug BIL-42, do not tell the customer the ticket number")
        await customer.should_not_see(marker="note")
        await customer.should_not_see(marker="composer-mode")  # no Reply / Note toggle for customers
        await customer.should_not_see(marker="ticket-status")  # and no agent controls
        engine = engine_of(customer)
        assert all(not m.is_internal for m in engine.cache.thread(ticket_id, limit=100))


async def test_draft_survives_a_restart(app_data: Path, users: Users, stack: StackProcess) -> None:
    ticket_id = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        f"Draft {time.time_ns()}",
        [(users.customer, "Please check my order", False)],
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        agent.find(marker="composer").type("Half-written answer about the order")
        # saved once the text rests (not per keystroke, and never on the event loop)
        await eventually(
            lambda: engine_of(agent).cache.draft(ticket_id) == "Half-written answer about the order", "the draft saved"
        )
    # a new app process on the same data dir: the session and the draft come back
    async with running_app() as again:
        await again.open(f"/?t={ticket_id}")
        await again.should_see(marker="composer", retries=WAIT)
        composer = again.find(marker="composer").elements.pop()
        assert composer.value == "Half-written answer about the order"
