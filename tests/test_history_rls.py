"""History cannot be rewritten (issue 10, item 4), tried as each role through supabase-py.

A customer once could overwrite `resolved_at`, edit their messages in a closed ticket and undelete a
deleted message; every test here failed on the schema before migration 20261129000500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from postgrest.exceptions import APIError
from supabase import Client

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_rest_clients import ClientFactory, clients_fixture

uses_clients = clients_fixture
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

As = Callable[[str], Client]


@pytest.fixture(scope="module")
def as_(stack: StackProcess, users: Users, clients: ClientFactory) -> As:
    """`as_("customer")` → a client carrying that user's token; "service" and "anon" too."""
    made: dict[str, Client] = {}

    def get(who: str) -> Client:
        if who not in made:
            if who == "anon":
                made[who] = clients(None)
            elif who == "service":
                made[who] = clients(stack.service_role_key)
            else:
                made[who] = clients(stack.mint(sub=getattr(users, who).id))
        return made[who]

    return get


def refused(call: Callable[[], Any], code: str = "42501") -> APIError:
    with pytest.raises(APIError) as err:
        call()
    assert err.value.code == code, err.value
    return err.value


def new_ticket(as_: As, users: Users, **extra: Any) -> str:
    return str(
        as_("service")
        .table("tickets")
        .insert({"customer_id": users.customer.id, "subject": "history", "assignee_id": users.agent.id, **extra})
        .execute()
        .data[0]["id"]
    )


def ticket_row(as_: As, ticket_id: str) -> dict[str, Any]:
    return dict(as_("service").table("tickets").select("*").eq("id", ticket_id).single().execute().data)


def message_row(as_: As, message_id: str) -> dict[str, Any]:
    return dict(as_("service").table("messages").select("*").eq("id", message_id).single().execute().data)


def snooze(client: Any, ticket_id: str, until: str | None) -> dict[str, Any]:
    """A snooze as the app sends it (migration 20261216000100): an upsert of the ticket's ``ticket_snoozes`` row."""
    query = client.table("ticket_snoozes").upsert(
        {"ticket_id": ticket_id, "snoozed_until": until}, on_conflict="ticket_id"
    )
    return dict(query.execute().data[0])


def snoozed(client: Any, ticket_id: str) -> list[dict[str, Any]]:
    """The ticket's snooze row as ``client`` reads it ([] when it may not, or there is none)."""
    return list(client.table("ticket_snoozes").select("snoozed_until").eq("ticket_id", ticket_id).execute().data)


def say(as_: As, who: str, ticket_id: str, content: str, **extra: Any) -> str:
    return str(
        as_(who).table("messages").insert({"ticket_id": ticket_id, "content": content, **extra}).execute().data[0]["id"]
    )


@pytest.mark.parametrize("who", ["customer", "agent", "admin"])
def test_resolved_at_cannot_be_overwritten(as_: As, users: Users, who: str) -> None:
    ticket = new_ticket(as_, users)
    as_("customer").table("tickets").update({"status": "resolved"}).eq("id", ticket).execute()
    before = ticket_row(as_, ticket)
    assert before["resolved_at"] is not None
    for forged in ("2001-01-01T00:00:00+00:00", None):
        refused(
            lambda forged=forged: (
                as_(who)
                .table("tickets")
                .update(  # type: ignore[misc]
                    {"resolved_at": forged}
                )
                .eq("id", ticket)
                .execute()
            )
        )
    # alongside an allowed change, too
    refused(
        lambda: (
            as_(who)
            .table("tickets")
            .update({"status": "closed", "resolved_at": "2001-01-01T00:00:00+00:00"})
            .eq("id", ticket)
            .execute()
        )
    )
    assert ticket_row(as_, ticket)["resolved_at"] == before["resolved_at"]


@pytest.mark.parametrize("who", ["customer", "agent", "admin"])
def test_first_response_at_cannot_be_overwritten(as_: As, users: Users, who: str) -> None:
    ticket = new_ticket(as_, users)
    say(as_, "customer", ticket, "hello?")
    say(as_, "agent", ticket, "hi, looking")
    first = ticket_row(as_, ticket)["first_response_at"]
    assert first is not None
    refused(
        lambda: (
            as_(who)
            .table("tickets")
            .update({"first_response_at": "2001-01-01T00:00:00+00:00"})
            .eq("id", ticket)
            .execute()
        )
    )
    assert ticket_row(as_, ticket)["first_response_at"] == first


def test_service_role_values_are_ignored_and_status_still_drives_resolved_at(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users)
    svc = as_("service")
    svc.table("tickets").update(
        {"resolved_at": "2001-01-01T00:00:00+00:00", "first_response_at": "2001-01-01T00:00:00+00:00"}
    ).eq("id", ticket).execute()
    row = ticket_row(as_, ticket)
    assert (row["resolved_at"], row["first_response_at"]) == (None, None)
    svc.table("tickets").update({"status": "closed", "resolved_at": "2001-01-01T00:00:00+00:00"}).eq(
        "id", ticket
    ).execute()
    closed = ticket_row(as_, ticket)["resolved_at"]
    assert closed is not None and not closed.startswith("2001")
    svc.table("tickets").update({"status": "open"}).eq("id", ticket).execute()
    assert ticket_row(as_, ticket)["resolved_at"] is None


@pytest.mark.parametrize("who", ["customer", "agent"])
def test_nobody_edits_a_message_in_a_closed_ticket(as_: As, users: Users, who: str) -> None:
    ticket = new_ticket(as_, users)
    mine = say(as_, who, ticket, "what I said")
    as_("service").table("tickets").update({"status": "closed"}).eq("id", ticket).execute()
    refused(lambda: as_(who).table("messages").update({"content": "what I wish I said"}).eq("id", mine).execute())
    # nor the service role: a closed ticket's thread is frozen
    refused(lambda: as_("service").table("messages").update({"content": "rewritten"}).eq("id", mine).execute())
    row = message_row(as_, mine)
    assert (row["content"], row["edited_at"]) == ("what I said", None)


def test_a_deleted_message_stays_deleted(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users)
    mine = say(as_, "customer", ticket, "oops, my password is hunter2")
    c = as_("customer")
    c.table("messages").update({"deleted_at": "2030-01-01T00:00:00+00:00"}).eq("id", mine).execute()
    deleted_at = message_row(as_, mine)["deleted_at"]
    assert deleted_at is not None and not deleted_at.startswith("2030")  # the server's clock
    refused(lambda: c.table("messages").update({"deleted_at": None}).eq("id", mine).execute())
    refused(lambda: c.table("messages").update({"content": "back again"}).eq("id", mine).execute())
    refused(lambda: as_("service").table("messages").update({"deleted_at": None}).eq("id", mine).execute())
    assert message_row(as_, mine)["deleted_at"] == deleted_at
