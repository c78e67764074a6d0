"""Timestamps users write are real instants of this era (migration 20261214000200), tried through supabase-py.

review16: `PATCH tickets {status: 'pending', snoozed_until: 'infinity'}` by any agent was stored (the time is in
`ticket_snoozes` since migration 20261216000100, under the same rules), and every client that
could see the ticket failed its pulls on that row; admins could store a holiday on 'infinity', anyone a read marker
at '-infinity'. Each refusal here was an accepted write before the migration.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from postgrest.exceptions import APIError

from supportchat_app.components.snooze import presets
from tests.conftest import Users
from tests.test_history_rls import As, as_, new_ticket, refused, snooze, snoozed
from tests.test_rest_clients import clients_fixture

uses_clients = clients_fixture
uses_as = as_
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

NOT_REAL = ["infinity", "-infinity", "20000-01-01", "294276-12-31 23:59:59+00", "0044-03-15 BC"]


@pytest.mark.parametrize("until", [*NOT_REAL, "in 366 days"])
def test_a_snooze_that_is_no_real_time_within_a_year_is_refused_with_a_clear_error(
    as_: As, users: Users, until: str
) -> None:
    ticket = new_ticket(as_, users, status="pending")
    if until == "in 366 days":
        until = (datetime.now(UTC) + timedelta(days=366)).isoformat()
    agent = as_("agent")
    err = refused(lambda: snooze(agent, ticket, until), code="22008")
    assert err.message == "a ticket is snoozed until a time at most a year from now"
    assert snoozed(agent, ticket) == []
    # and a snooze there already is not changed to it either
    snooze(agent, ticket, None)
    refused(lambda: snooze(agent, ticket, until), code="22008")
    assert snoozed(agent, ticket) == [{"snoozed_until": None}]


def test_the_app_s_snoozes_still_work(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users, status="pending")
    agent = as_("agent")
    now = datetime.now(UTC)
    wanted = [when for _, when in presets(now)] + [now + timedelta(days=364)]
    for when in wanted:
        row = snooze(agent, ticket, when.isoformat())
        assert datetime.fromisoformat(row["snoozed_until"]) == when
    # a snooze set within the bound is not checked again when something else of the ticket changes
    assert agent.table("tickets").update({"priority": "high"}).eq("id", ticket).execute().data[0]["status"] == "pending"
    assert [datetime.fromisoformat(r["snoozed_until"]) for r in snoozed(agent, ticket)] == [wanted[-1]]


@pytest.mark.parametrize("day", ["infinity", "-infinity", "20000-01-01", "0044-03-15 BC", "1969-12-31"])
def test_a_holiday_on_no_day_of_this_era_is_refused(as_: As, day: str) -> None:
    err = refused(lambda: as_("admin").table("sla_holidays").insert({"day": day, "name": "forever"}).execute(), "23514")
    assert "sla_holidays_day_range" in err.message


def test_a_real_holiday_is_still_taken(as_: As) -> None:
    admin = as_("admin")
    row = admin.table("sla_holidays").insert({"day": "2031-12-26", "name": "Boxing Day"}).execute().data[0]
    try:
        assert row == {"day": "2031-12-26", "name": "Boxing Day"}
    finally:
        admin.table("sla_holidays").delete().eq("day", "2031-12-26").execute()


@pytest.mark.parametrize("at", ["-infinity", "0044-03-15 BC", "1969-12-31T23:59:59+00:00"])
def test_a_read_marker_before_1970_is_refused(as_: As, users: Users, at: str) -> None:
    ticket = new_ticket(as_, users)
    customer = as_("customer")
    err = refused(
        lambda: (
            customer.table("ticket_reads")
            .upsert({"ticket_id": ticket, "user_id": users.customer.id, "last_read_at": at})
            .execute()
        ),
        "23514",
    )
    assert "ticket_reads_last_read_at_range" in err.message
    marker = datetime.now(UTC).isoformat()
    row = (
        customer.table("ticket_reads")
        .upsert({"ticket_id": ticket, "user_id": users.customer.id, "last_read_at": marker})
        .execute()
        .data[0]
    )
    assert datetime.fromisoformat(row["last_read_at"]) <= datetime.now(UTC)


def test_a_mention_seen_before_1970_is_refused(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users, assignee_id=None)  # unassigned: agent2 may open it, so the mention is recorded
    text = f"@[{users.agent2.name}]({users.agent2.id}) please look"
    message = as_("agent").table("messages").insert({"ticket_id": ticket, "content": text}).execute().data[0]["id"]
    agent2 = as_("agent2")
    mention = agent2.table("mentions").select("id").eq("message_id", message).single().execute().data["id"]
    with pytest.raises(APIError) as err:
        agent2.table("mentions").update({"seen_at": "-infinity"}).eq("id", mention).execute()
    assert err.value.code == "23514" and "mentions_seen_at_range" in err.value.message
    assert agent2.table("mentions").update({"seen_at": "now"}).eq("id", mention).execute().data[0]["seen_at"]


@pytest.mark.parametrize("at", ["infinity", "20000-01-01", "-infinity"])
def test_an_invitation_made_at_no_time_of_this_era_is_refused(as_: As, at: str) -> None:
    """review16b: the one user-writable timestamp 20261214000200's audit missed (migration 20261214000900)."""
    address = f"bounds-{uuid.uuid4().hex[:8]}@example.test"
    admin = as_("admin")
    err = refused(
        lambda: admin.table("invitations").insert({"email": address, "role": "agent", "created_at": at}).execute(),
        "23514",
    )
    assert "invitations_created_at_range" in err.message
    assert admin.table("invitations").select("email").eq("email", address).execute().data == []
