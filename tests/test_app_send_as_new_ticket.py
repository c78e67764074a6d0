"""A new ticket refused for its id, in the app (mend17c; the push's side: tests/test_attack_foreign_ticket_id.py):
the customer's ticket, written offline, meets another customer's ticket under its id on the server. The ticket's
header says it was not created and offers "Send as a new ticket"; its first message shows failed with no Retry
(the same id would go to the other's ticket); the button sends the ticket and its message again under new ids and
opens the new ticket."""

from __future__ import annotations

import time
from pathlib import Path

from nicegui import ui

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
    sign_in,
)
from tests.test_attack_foreign_ticket_id import PLANT
from tests.test_sync_support import sql


async def test_a_new_ticket_refused_for_its_id_is_sent_as_a_new_ticket_from_its_header(
    app_data: Path, users: Users, stack: StackProcess, proxy: FaultProxy
) -> None:
    tag = time.time_ns()
    subject, text = f"Printer on fire {tag}", f"it smokes since this morning {tag}"
    async with running_app() as customer:
        await sign_in(customer, users.customer)
        engine = engine_of(customer)
        proxy.set_mode("drop")  # written offline; meanwhile another customer's ticket takes its id on the server
        refused = engine.commands.create_ticket(subject, text)
        sql(stack.db_url, PLANT, refused.id, users.customer2.id)
        await customer.open(f"/?t={refused.id}")
        await customer.should_see(marker="composer", retries=WAIT)
        proxy.set_mode("pass")
        await customer.should_see(marker="send-as-new-ticket", retries=WAIT)
        await customer.should_see("Not created: the server holds another ticket under this ticket's id.")
        bubble = bubble_with(customer, text)
        await eventually(lambda: "state-failed" in markers_in(bubble_with(customer, text)), "the first message failed")
        bubble = bubble_with(customer, text)
        assert "retry" not in markers_in(bubble), "a retry sends it to the other's ticket"
        customer.find(marker="send-as-new-ticket").click()

        def on_server() -> list[tuple[object, ...]]:
            query = "select t.id::text, m.content from tickets t join messages m on m.ticket_id = t.id"
            return sql(stack.db_url, query + " where t.subject = %s and t.customer_id = %s", subject, users.customer.id)

        await eventually(lambda: on_server() != [], "the ticket on the server under a new id", 60)
        [(new_id, content)] = on_server()
        assert content == text and new_id != refused.id
        await eventually(lambda: engine.cache.ticket(refused.id) is None, "the refused ticket gone")
        await customer.should_see(marker="ticket-subject")
        with customer:
            shown = [
                d.text for d in ui.context.client.elements.values() if "ticket-subject" in getattr(d, "_markers", [])
            ]
        assert shown == [subject], "the new ticket is open"
        await eventually(lambda: "state-failed" not in markers_in(bubble_with(customer, text)), "the message sent")
        assert engine.status.failed == 0
