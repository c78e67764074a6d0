"""The SLA's waiting time under the ended-session rule (migration 20261214000100), against the real localbase
through the official client: a message sent with the token of a session that has ended counts as its sender's
customer self for the "awaiting reply since" clock of `ticket_sla`, as 20261213000110 made it count for the first
response, notifications and mentions.
"""

from __future__ import annotations

from supabase import Client

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_invitations import (  # noqa: F401 (clients is a fixture)
    _signed_up_by_an_outsider,
    client,
    clients,
    code_for,
    new_email,
)
from tests.test_live_sessions import with_token
from tests.test_sync_support import sql


def test_a_message_from_an_ended_session_keeps_the_customer_waiting(
    stack: StackProcess, users: Users, clients: list[Client]
) -> None:
    """review15b: the outsider's old token (its session ended when the invitee accepted and the account became an
    admin's) posts on the account's own ticket after the desk's first response; `sla_inputs` read the sender's
    role from `profiles` and took the post for the desk's newest staff reply: nobody was waiting, no reply was due."""
    address = new_email()
    mallory = _signed_up_by_an_outsider(stack, users, clients, address)
    held = mallory.auth.get_session()
    assert held is not None and held.user is not None
    ticket = mallory.table("tickets").insert({"customer_id": held.user.id, "subject": "mine"}).execute().data[0]["id"]
    sql(
        stack.db_url,
        "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, 'hello')",
        ticket,
        users.agent.id,
    )  # the first response
    waiting = "select awaiting_reply_since, next_response_due_at is not null from ticket_sla where ticket_id = %s"
    assert sql(stack.db_url, waiting, ticket) == [(None, False)]
    owner = client(stack, clients)
    owner.auth.verify_otp({"email": address, "token": code_for(stack, address), "type": "email"})
    assert owner.rpc("accept_invitation").execute().data == "admin"

    stolen = with_token(stack, clients, held.access_token)
    sent = stolen.table("messages").insert({"ticket_id": ticket, "content": "still broken"}).execute().data[0]
    ((created,),) = sql(stack.db_url, "select created_at from public.messages where id = %s", sent["id"])
    assert sql(stack.db_url, waiting, ticket) == [(created, True)]  # a customer's message: waiting from it

    # the live owner's reply is the desk's: the wait ends
    owner.table("messages").insert({"ticket_id": ticket, "content": "on it"}).execute()
    assert sql(stack.db_url, waiting, ticket) == [(None, False)]
