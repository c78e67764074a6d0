"""A customer's view of their ticket does not move when staff write an internal note (migration 20261214000210).

review16: the note's insert set the ticket's last_message_at (and so updated_at and change_xid), so the customer's
REST view showed when staff wrote about them and realtime pushed them the ticket's UPDATE at that moment. A public
reply still updates the ticket, for the customer and for staff.
"""

from __future__ import annotations

import pytest

from tests.conftest import Users
from tests.realtime.support import listen, new_ticket, post, signed_in, wait_until
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(60)

SEEN = "id,status,last_message_at,updated_at,first_response_at,change_xid,change_id"


async def test_an_internal_note_leaves_the_customer_s_ticket_alone_and_a_reply_does_not(
    stack: StackProcess, users: Users
) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    customer = await signed_in(stack, users.customer)
    tickets = await listen(customer, "own-tickets", {"event": "*", "table": "tickets", "filter": f"id=eq.{ticket}"})
    thread = await listen(customer, "own-thread", {"event": "INSERT", "table": "messages"})

    async def view() -> dict[str, object]:
        return dict((await customer.table("tickets").select(SEEN).eq("id", ticket).single().execute()).data)

    before = await view()
    post(stack.db_url, users.agent, ticket, "internal: the customer is on the old plan", internal=True)
    assert await view() == before
    reply = post(stack.db_url, users.agent, ticket, "We are on it.")
    await thread.wait_content("We are on it.")  # commit order: had the note sent an UPDATE, it came before this
    await wait_until(lambda: bool(tickets.records("tickets")), what="the reply's ticket UPDATE")
    records = tickets.records("tickets")
    after = await view()
    assert after["last_message_at"] != before["last_message_at"]
    # every ticket change the customer got is the reply's: none carries the note's time
    assert all(r["last_message_at"] == after["last_message_at"] for r in records), records
    created = (await customer.table("messages").select("created_at").eq("id", reply).single().execute()).data
    assert after["last_message_at"] == created["created_at"]
    assert after["first_response_at"] == created["created_at"]  # the reply is the first response, not the note
