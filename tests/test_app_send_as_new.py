"""A reply refused for its id, in the app (fix17 item 2): another row on the server holds the reply's id (only a
compromised server sends one; tests/test_attack_foreign_message_id.py), so the reply is failed for good and Retry,
which would send the same id, is not offered. Its bubble offers "Send as a new message" instead: the same text goes
under a new id and reaches the server; before, the only way out was Discard, and the text went with it."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

from nicegui.testing import User

from supportchat_app.components.bubble import MessageBubble
from sync import SyncEngine
from tests.conftest import Users
from tests.faultproxy import FaultProxy
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
from tests.test_app_message_actions import inside
from tests.test_attack_foreign_message_id import FOREIGN
from tests.test_sync_support import sql


async def _offline_in(agent: User, users: Users, ticket_id: str, proxy: FaultProxy) -> SyncEngine:
    """The agent signed in, in the ticket, with the server out of reach: what they write waits in the outbox."""
    await sign_in(agent, users.agent)
    await agent.open(f"/?t={ticket_id}")
    await agent.should_see(marker="composer", retries=WAIT)
    proxy.set_mode("drop")
    return engine_of(agent)


async def _refused(
    agent: User, stack: StackProcess, users: Users, proxy: FaultProxy, reply: tuple[str, str, str]
) -> Any:
    """The reply (text, id, another ticket) refused for its id: the server holds a row of its own under it, and the
    agent comes back online. Returns the reply's bubble, failed."""
    text, refused, other = reply
    sql(stack.db_url, FOREIGN, refused, other, users.customer.id)
    proxy.set_mode("pass")
    bubble = bubble_with(agent, text)
    # no pull: the push itself finds the other row under the reply's id (mend17; before, the reply showed sent
    # until the next periodic pull, 60 s)
    await eventually(lambda: "state-failed" in markers_in(bubble), "the reply refused for its id")
    return bubble


async def test_a_reply_refused_for_its_id_is_sent_as_a_new_message_from_its_bubble(
    app_data: Path, users: Users, stack: StackProcess, proxy: FaultProxy
) -> None:
    tag = time.time_ns()
    text = f"Your refund is on its way {tag}"
    ticket_id = seed_ticket(
        stack.db_url, users.customer, users.agent, f"Send as new {tag}", [(users.customer, "?", False)]
    )
    other = seed_ticket(stack.db_url, users.customer, users.agent, f"Other {tag}", [(users.customer, "!", False)])
    async with running_app() as agent:
        engine = await _offline_in(agent, users, ticket_id, proxy)
        send(agent, text)
        await eventually(lambda: bubble_with(agent, text) is not None, "the reply (still offline)")
        refused = next(m.id for m in engine.cache.thread(ticket_id) if m.content == text)
        bubble = await _refused(agent, stack, users, proxy, (text, refused, other))
        assert "send-as-new" in markers_in(bubble)
        assert "retry" not in markers_in(bubble), "a retry sends the same id, refused again"
        inside(agent, bubble, "send-as-new").click()
        await eventually(lambda: "state-failed" not in markers_in(bubble_with(agent, text)), "the new message")
        await eventually(
            lambda: (
                sql(
                    stack.db_url, "select id::text from messages where ticket_id = %s and content = %s", ticket_id, text
                )
                not in ([], [(refused,)])
            ),
            "the text on the server under a new id",
            60,
        )
        # the refused reply left its thread; the id is the other ticket's message on the server, which a pull may
        # have brought into the cache meanwhile (the agent sees that ticket too)
        assert refused not in {m.id for m in engine.cache.thread(ticket_id)}
        held = engine.cache.message(refused)
        assert held is None or (held.ticket_id == other and held.local_state == "sent"), held
        assert engine.status.failed == 0


async def test_a_refused_reply_whose_file_is_gone_goes_without_it_and_its_bubble_says_so(
    app_data: Path, users: Users, stack: StackProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Regression (review17b): with a file of the refused reply no longer on this device, "Send as a new message"
    was refused ("a file of this reply is no longer on this device"), leaving only Discard, which loses the text.
    Now the text goes with the files still here, and the new bubble names the file it went without."""
    tag = time.time_ns()
    text = f"The invoice and the receipt {tag}"
    ticket_id = seed_ticket(
        stack.db_url, users.customer, users.agent, f"Left out {tag}", [(users.customer, "?", False)]
    )
    other = seed_ticket(stack.db_url, users.customer, users.agent, f"Other {tag}", [(users.customer, "!", False)])
    invoice, receipt = tmp_path / "invoice.txt", tmp_path / "receipt.txt"
    invoice.write_text("invoice 1")
    receipt.write_text("receipt 1")
    async with running_app() as agent:
        engine = await _offline_in(agent, users, ticket_id, proxy)
        refused = engine.commands.send_message(ticket_id, text, files=[invoice, receipt]).id
        await eventually(lambda: bubble_with(agent, text) is not None, "the reply (still offline)")
        bubble = await _refused(agent, stack, users, proxy, (text, refused, other))
        # a reply with files fails at its first upload (Storage's policy refuses a file of another's message), not
        # for its id: the pull finds the other row and offers Send as a new message
        await engine.pull()
        await eventually(lambda: "send-as-new" in markers_in(bubble), "Send as a new message offered", 60)
        for row in engine.cache.attachments(refused):
            if row["name"] == "receipt.txt":
                Path(str(row["local_path"])).unlink()  # its copy on this device is gone since
        inside(agent, bubble, "send-as-new").click()  # before: refused, and the bubble stayed failed
        await eventually(lambda: "left-out" in markers_in(bubble_with(agent, text)), "the note of the file left out")
        note = inside(agent, bubble_with(agent, text), "left-out").elements.pop()
        assert "receipt.txt" in note.text and "invoice.txt" not in note.text
        await eventually(
            lambda: (
                sql(
                    stack.db_url,
                    "select a.name from messages m join attachments a on a.message_id = m.id"
                    " where m.ticket_id = %s and m.content = %s",
                    ticket_id,
                    text,
                )
                == [("invoice.txt",)]
            ),
            "the text on the server with the file still here",
            60,
        )


def test_a_bubble_is_never_made_without_what_its_send_as_new_button_does() -> None:
    """Regression (review17b): ``MessageBubble``'s ``on_resend`` defaulted to a function that did nothing, so a
    bubble made without it showed "Send as a new message" on a refused reply and the click did nothing at all.
    Now it is required, like Retry's and Discard's (mypy holds every caller to it)."""
    parameters = inspect.signature(MessageBubble).parameters
    for handler in ("on_retry", "on_discard", "on_resend"):
        assert parameters[handler].default is inspect.Parameter.empty, handler
