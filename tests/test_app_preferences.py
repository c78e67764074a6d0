"""The profile page's email notification preferences through the real stack (issue 13 item 4): chosen on
the page while offline they wait on the device, reach the server when the network is back, and the notify
worker (notify/, against the same database and a real SMTP server in this process) then does what the page
said — no mail for "never", a mail at once for "always" even when the reply was read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from nicegui.testing.user import User

from tests.conftest import create_user
from tests.faultproxy import FaultProxy
from tests.realtime.support import new_ticket, post
from tests.smtpsink import Sink, running_sink
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    eventually,
    running_app,
    sign_in,
)
from tests.test_notify import read_now, settled, states, wait_for, worker


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, str]]:
    with running_sink() as pair:
        yield pair


def server_row(stack: StackProcess, user_id: str) -> tuple[Any, ...] | None:
    with psycopg.connect(stack.db_url) as conn:
        return conn.execute(
            "select email, unread_after_minutes from public.notification_preferences where user_id = %s", (user_id,)
        ).fetchone()


def state_text(user: User) -> str:
    return str(user.find(marker="notify-state").elements.pop().text)


def choose(user: User, email: str, minutes: int | None = None) -> None:
    user.find(marker="notify-email").elements.pop().set_value(email)
    user.find(marker="notify-minutes").elements.pop().set_value(minutes)
    user.find(marker="notify-save").click()


async def test_the_worker_does_what_the_page_saved(
    app_data: Path,
    stack: StackProcess,
    proxy: FaultProxy,
    smtp: tuple[Sink, str],
) -> None:
    sink, smtp_url = smtp
    tag = time.time_ns() % 10**8
    customer = create_user(stack.db_url, "customer", f"Pref customer {tag}")
    agent = create_user(stack.db_url, "agent", f"Pref agent {tag}")
    ticket = new_ticket(stack.db_url, customer, agent, f"Preferences {tag}")
    async with running_app() as page:
        await sign_in(page, customer)
        await page.open("/profile")
        await page.should_see(marker="notify-save", retries=WAIT)

        proxy.set_mode("drop")  # offline: the choice is kept on the device and queued
        choose(page, "never")
        await eventually(lambda: "on this device" in state_text(page), "the offline save")
        assert server_row(stack, customer.id) is None
        proxy.set_mode("pass")
        await eventually(lambda: state_text(page) == "Saved.", "the choice to reach the server", 60)
        assert server_row(stack, customer.id) == ("never", None)

        # "never": the agent's reply, left unread, is skipped by the worker
        post(stack.db_url, agent, ticket, f"Reply {tag} nobody mails")
        with worker(stack, smtp_url, delay=0.5):
            await asyncio.to_thread(wait_for, settled(stack.db_url, [ticket], customer, 1), "the first reply settled")
        assert states(stack.db_url, [ticket], customer) == ["skipped"] and sink.to(customer.email) == []

        # "always": mailed at once, even though the customer read it
        choose(page, "always")
        await eventually(lambda: server_row(stack, customer.id) == ("always", None), "the second choice saved", 60)
        post(stack.db_url, agent, ticket, f"Reply {tag} always mailed")
        read_now(stack, customer, ticket)
        with worker(stack, smtp_url, delay=300.0):  # the default delay would hold an 'unread' mail for minutes
            await asyncio.to_thread(wait_for, settled(stack.db_url, [ticket], customer, 2), "the second reply settled")
        mails = sink.to(customer.email)
        assert len(mails) == 1 and f"Reply {tag} always mailed" in mails[0].text()

        # a bad delay is refused on the page with a sentence and nothing is queued
        choose(page, "unread", 99999)
        await eventually(lambda: "between 0 and 10080" in state_text(page), "the refusal")
        assert server_row(stack, customer.id) == ("always", None)

        # "unread after N minutes": saved as chosen, read back by a fresh page
        choose(page, "unread", 45)
        await eventually(lambda: server_row(stack, customer.id) == ("unread", 45), "the delay saved", 60)
        await page.open("/profile")
        await page.should_see(marker="notify-save", retries=WAIT)
        assert page.find(marker="notify-email").elements.pop().value == "unread"
        assert page.find(marker="notify-minutes").elements.pop().value == 45
