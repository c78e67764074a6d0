"""A reply refused for its id, in the app (fix17 item 2): another row on the server holds the reply's id (only a
compromised server sends one; tests/test_attack_foreign_message_id.py), so the reply is failed for good and Retry,
which would send the same id, is not offered. Its bubble offers "Send as a new message" instead: the same text goes
under a new id and reaches the server; before, the only way out was Discard, and the text went with it."""

from __future__ import annotations

import time
from pathlib import Path

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
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        engine = engine_of(agent)
        proxy.set_mode("drop")  # written offline; meanwhile the server gets a row of its own under the reply's id
        send(agent, text)
        await eventually(lambda: bubble_with(agent, text) is not None, "the reply (still offline)")
        refused = next(m.id for m in engine.cache.thread(ticket_id) if m.content == text)
        sql(stack.db_url, FOREIGN, refused, other, users.customer.id)
        proxy.set_mode("pass")
        bubble = bubble_with(agent, text)
        # no pull: the push itself finds the other row under the reply's id (mend17; before, the reply showed sent
        # until the next periodic pull, 60 s)
        await eventually(lambda: "state-failed" in markers_in(bubble), "the reply refused for its id")
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
        assert engine.cache.message(refused) is None
        assert engine.status.failed == 0
