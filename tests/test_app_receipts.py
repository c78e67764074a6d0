"""Per-message read receipts in the app (issue 13 item 3), through the real engine, cache, realtime and
NiceGUI pages against the session's localbase: an agent's reply goes from sent to "Read by <customer>"
live when the customer's read marker passes it; staff see which colleague read a customer's message; a
customer sees "Read" on their own message, until the project's setting hides staff read markers from
customers (then the app shows "sent" only, consistent with what RLS lets the customer read)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from supabase import ClientOptions, create_client

from supportchat_app.components.receipts import ReceiptLine
from tests.conftest import User as Account
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    bubble_with,
    engine_of,
    eventually,
    markers_in,
    running_app,
    seed_ticket,
    send,
    sign_in,
)


def read_as(stack: StackProcess, account: Account, ticket_id: str) -> None:
    """``account`` opens the ticket elsewhere: their read marker moves to now, through the API as they would."""
    token = stack.mint(sub=account.id, email=account.email)
    with httpx.Client(timeout=30) as http:
        client = create_client(
            stack.api_url,
            stack.anon_key,
            ClientOptions(headers={"Authorization": f"Bearer {token}"}, httpx_client=http),
        )
        client.table("ticket_reads").upsert(
            {"ticket_id": ticket_id, "user_id": account.id, "last_read_at": "now"}
        ).execute()


def receipt_text(bubble: Any) -> str | None:
    """The text of the bubble's "read" label, or None when it shows no read receipt."""
    if bubble is None:
        return None
    for element in bubble.descendants():
        if "state-read" in getattr(element, "_markers", []):
            return str(element.text)
    return None


def receipt_line(bubble: Any) -> ReceiptLine:
    return next(e for e in bubble.descendants() if isinstance(e, ReceiptLine))


def read_label(line: ReceiptLine) -> Any:
    return next(e for e in line.descendants() if "state-read" in getattr(e, "_markers", []))


@contextmanager
def customers_see_receipts(stack: StackProcess, value: bool) -> Iterator[None]:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("update public.app_settings set customers_see_read_receipts = %s", (value,))
    try:
        yield
    finally:
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            conn.execute("update public.app_settings set customers_see_read_receipts = true")


async def test_a_reply_turns_read_live_and_staff_see_who_read_the_customer(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    question = f"Where is my parcel {time.time_ns()}?"
    ticket_id = seed_ticket(stack.db_url, users.customer, users.agent, "Receipts", [(users.customer, question, False)])
    reply = "It left the depot this morning."
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        # the thread first (a message the first sync brings after a newer one was sent shows only on reopening)
        await eventually(lambda: bubble_with(agent, question) is not None, "the customer's question")
        send(agent, reply)
        await eventually(lambda: "state-sent" in markers_in(bubble_with(agent, reply)), "the reply acknowledged")
        assert receipt_text(bubble_with(agent, reply)) is None, "nobody has read the reply yet"
        assert bubble_with(agent, question) is not None
        assert receipt_text(bubble_with(agent, question)) is None, "no other agent has read the question"

        read_as(stack, users.customer, ticket_id)  # the customer opens the ticket on their device
        await eventually(
            lambda: receipt_text(bubble_with(agent, reply)) == f"Read by {users.customer.name}",
            "the reply turning read, live",
        )
        assert "state-sent" in markers_in(bubble_with(agent, reply)), "read implies the server has it"

        # the customer reads again: the same reader, a newer marker; the line keeps its elements (only its
        # tooltip's time may change), where it used to be cleared and drawn again at every marker
        line = receipt_line(bubble_with(agent, reply))
        label, first = read_label(line), line.receipt.read_at
        read_as(stack, users.customer, ticket_id)
        await eventually(lambda: receipt_line(bubble_with(agent, reply)).receipt.read_at != first, "the newer marker")
        assert receipt_line(bubble_with(agent, reply)) is line
        assert read_label(line) is label and not label.is_deleted, "the read line was drawn again"
        assert label.text == f"Read by {users.customer.name}"
        assert line.tip is not None and line.tip.text.startswith(f"Read by {users.customer.name} (last read ")

        read_as(stack, users.admin, ticket_id)  # a colleague (an admin sees every ticket) reads the thread
        await eventually(
            lambda: receipt_text(bubble_with(agent, question)) == f"Read by {users.admin.name}",
            "which colleague read the customer's message",
        )


async def test_a_customer_sees_support_read_their_message_unless_the_project_hides_it(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    question = f"Can I change my plan {time.time_ns()}?"
    ticket_id = seed_ticket(
        stack.db_url, users.customer2, users.agent, "Receipts, customer side", [(users.customer2, question, False)]
    )
    async with running_app() as customer:
        await sign_in(customer, users.customer2)
        await customer.open(f"/?t={ticket_id}")
        await customer.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: "state-sent" in markers_in(bubble_with(customer, question)), "the question")
        assert receipt_text(bubble_with(customer, question)) is None

        read_as(stack, users.agent, ticket_id)
        await eventually(lambda: receipt_text(bubble_with(customer, question)) == "Read", "support read it, live")

        engine = engine_of(customer)
        with customers_see_receipts(stack, False):
            await engine.pull()  # the next pull brings the project's setting
            await eventually(
                lambda: receipt_text(bubble_with(customer, question)) is None, "the receipt hidden as the project says"
            )
            assert "state-sent" in markers_in(bubble_with(customer, question)), "still shown as sent"
            assert not engine.cache.customers_see_read_receipts()
        await engine.pull()
        await eventually(lambda: receipt_text(bubble_with(customer, question)) == "Read", "shown again")
