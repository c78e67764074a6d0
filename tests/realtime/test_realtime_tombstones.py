"""A deleted message through realtime (issue 13): subscribers get the tombstone, never the text again.

The edit and the delete happen while a customer and an agent listen; every payload they receive after
the delete is searched for the secret, including the revision rows the server drops.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import Users
from tests.realtime.support import as_user, listen, new_ticket, post, signed_in, wait_until
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(60)


async def test_delete_reaches_subscribers_as_a_tombstone(stack: StackProcess, users: Users) -> None:
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    customer = await signed_in(stack, users.customer)
    agent = await signed_in(stack, users.agent)
    theirs = await listen(
        customer,
        "tomb-customer",
        {"event": "*", "table": "messages", "filter": f"ticket_id=eq.{ticket}"},
        {"event": "*", "table": "message_revisions"},
    )
    staff = await listen(
        agent,
        "tomb-agent",
        {"event": "*", "table": "messages", "filter": f"ticket_id=eq.{ticket}"},
        {"event": "*", "table": "message_revisions"},
    )
    message = post(stack.db_url, users.customer, ticket, "card 4111 1111 1111 1111")
    as_user(
        stack.db_url,
        users.customer,
        "update public.messages set content = %s where id = %s",
        ("card 4111 1111 1111 1112", message),
    )
    await wait_until(
        lambda: any(c["data"]["table"] == "message_revisions" for c in staff.changes),
        what="the revision reaching the agent",
    )
    # and the edit itself reaching both (it still carries the card number): only what comes after is checked below

    def edited(changes: list[dict[str, object]]) -> bool:
        return any("1112" in json.dumps(c) for c in changes)

    await wait_until(lambda: edited(theirs.changes) and edited(staff.changes), what="the edit reaching both")
    seen_before = len(theirs.changes), len(staff.changes)
    as_user(stack.db_url, users.customer, "update public.messages set deleted_at = now() where id = %s", (message,))

    def tombstone(changes: list[dict[str, object]]) -> bool:
        return any(
            c["data"]["type"] == "UPDATE" and c["data"]["record"].get("deleted_at")  # type: ignore[index,union-attr]
            for c in changes
        )

    await wait_until(lambda: tombstone(theirs.changes) and tombstone(staff.changes), what="the tombstone")
    # a sentinel after the delete: everything the delete caused has arrived before it
    post(stack.db_url, users.agent, ticket, "sentinel after the delete")
    await theirs.wait_content("sentinel after the delete")
    await staff.wait_content("sentinel after the delete")
    for listener, before in zip((theirs, staff), seen_before, strict=True):
        after = listener.changes[before:]
        assert "4111" not in json.dumps(after)
        record = next(c["data"]["record"] for c in after if c["data"]["type"] == "UPDATE")
        assert (record["id"], record["content"], record["deleted_by"]) == (message, "", users.customer.id)
    # the agent was told the revision went away (by key only); the customer never heard of revisions
    assert any(
        c["data"]["table"] == "message_revisions" and c["data"]["type"] == "DELETE"
        for c in staff.changes[seen_before[1] :]
    )
    assert not any(c["data"]["table"] == "message_revisions" and c["data"]["type"] != "DELETE" for c in theirs.changes)
