"""mend17 (LOW): a ticket's customer must be a customer. Staff may open a ticket on a customer's behalf (REST: the
app's New ticket is a customer's), and `tickets_insert_staff` checked only the assignee, so an agent could create
a ticket whose customer was an admin or another agent (or themselves, the column's default): that staff member then
read it as its customer and got its customer mails. Now an API write that sets a ticket's customer to anyone but a
customer account is refused with a plain error (migration 20261215000600); written as an attacker would, with each
user's own token through supabase-py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from postgrest.exceptions import APIError
from supabase import Client

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_rest_clients import ClientFactory, clients_fixture
from tests.test_sync_support import sql

uses_clients = clients_fixture
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")
NOT_A_CUSTOMER = "a ticket's customer must be a customer account"


@pytest.fixture(scope="module")
def as_(stack: StackProcess, users: Users, clients: ClientFactory) -> Callable[[str], Client]:
    made: dict[str, Client] = {}

    def get(who: str) -> Client:
        if who not in made:
            made[who] = clients(stack.mint(sub=getattr(users, who).id))
        return made[who]

    return get


def refused_as_not_a_customer(request: Any) -> None:
    """``request`` (a supabase-py query, not yet executed) is refused with the trigger's error."""
    with pytest.raises(APIError) as err:
        request.execute()
    assert (err.value.code, err.value.message) == ("42501", NOT_A_CUSTOMER), err.value


def test_an_agent_cannot_open_a_ticket_for_staff(
    stack: StackProcess, users: Users, as_: Callable[[str], Client]
) -> None:
    agent = as_("agent")
    for staff in (users.admin, users.agent2):
        subject = f"for {staff.id}"
        refused_as_not_a_customer(agent.table("tickets").insert({"customer_id": staff.id, "subject": subject}))
        assert sql(stack.db_url, "select 1 from tickets where subject = %s", subject) == []
    refused_as_not_a_customer(agent.table("tickets").insert({"subject": "for myself"}))
    refused_as_not_a_customer(as_("admin").table("tickets").insert({"customer_id": users.agent.id, "subject": "admin"}))


def test_staff_open_a_ticket_for_a_customer(users: Users, as_: Callable[[str], Client]) -> None:
    opened = (
        as_("agent")
        .table("tickets")
        .insert({"customer_id": users.customer.id, "assignee_id": users.agent.id, "subject": "on their behalf"})
        .execute()
        .data[0]
    )
    assert (opened["customer_id"], opened["assignee_id"]) == (users.customer.id, users.agent.id)
    mine = as_("customer2").table("tickets").insert({"subject": "my own"}).execute().data[0]
    assert mine["customer_id"] == users.customer2.id


def test_an_admin_cannot_move_a_ticket_to_staff(users: Users, as_: Callable[[str], Client]) -> None:
    admin = as_("admin")
    ticket = admin.table("tickets").insert({"customer_id": users.customer.id, "subject": "to move"}).execute().data[0]
    refused_as_not_a_customer(admin.table("tickets").update({"customer_id": users.agent2.id}).eq("id", ticket["id"]))
    moved = admin.table("tickets").update({"customer_id": users.customer2.id}).eq("id", ticket["id"]).execute().data
    assert moved[0]["customer_id"] == users.customer2.id


def _refusal(request: Any) -> tuple[str | None, str | None]:
    with pytest.raises(APIError) as err:
        request.execute()
    return err.value.code, err.value.message


def _answer(request: Any) -> str:
    """What a request answered, refused or not (an update RLS filters out answers no rows)."""
    try:
        return f"rows: {len(request.execute().data)}"
    except APIError as err:
        return f"{err.code}: {err.message}"


def test_a_customer_cannot_tell_staff_ids_from_others_by_the_refusal(
    users: Users, as_: Callable[[str], Client]
) -> None:
    """review17c (LOW): the check fires before RLS, so a customer naming another user got its words for a staff id and
    RLS's for anyone else: whether an id is staff, told to someone who may name no one but themselves
    (migration 20261215000610: the check acts for staff callers only)."""
    customer = as_("customer")
    ticket = customer.table("tickets").insert({"subject": "mine"}).execute().data[0]
    named = (("agent", users.agent.id), ("customer2", users.customer2.id), ("nobody", str(uuid.uuid4())))
    opened = {
        who: _refusal(customer.table("tickets").insert({"customer_id": uid, "subject": "x"})) for who, uid in named
    }
    assert len(set(opened.values())) == 1, opened
    assert NOT_A_CUSTOMER not in str(opened)
    moved = {
        who: _answer(customer.table("tickets").update({"customer_id": uid}).eq("id", ticket["id"]))
        for who, uid in named
    }
    assert len(set(moved.values())) == 1, moved
    assert NOT_A_CUSTOMER not in str(moved)
