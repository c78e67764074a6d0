"""The agent workspace's server schema (issue 14) as an attacker would try it, through supabase-py.

Customers never see tags, canned replies, macros, saved views, SLA settings or due times, mentions or
staff notes about them; agents write only what is theirs; the server keeps SLA due times and wakes
snoozed tickets without any client timer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from postgrest.exceptions import APIError

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_history_rls import As, as_, new_ticket, refused, say, snooze, snoozed
from tests.test_rest_clients import clients_fixture

uses_clients = clients_fixture
uses_as = as_
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

STAFF_TABLES = [
    "canned_replies",
    "macros",
    "tags",
    "ticket_tags",
    "saved_views",
    "customer_notes",
    "mentions",
    "sla_settings",
    "sla_targets",
    "sla_business_hours",
    "sla_holidays",
    "ticket_sla",
    "ticket_snoozes",
]
# pulled by cursor (sync_<table>); the SLA settings are read whole
SYNCED = [t for t in STAFF_TABLES if not t.startswith("sla_")]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def workspace(as_: As, users: Users) -> dict[str, str]:
    """One of everything, made by the people allowed to make it, around a ticket of `customer`."""
    ticket = new_ticket(as_, users, assignee_id=None)
    tag = as_("admin").table("tags").insert({"name": f"vip-{ticket[:8]}", "color": "#ff8800"}).execute().data[0]
    as_("agent").table("ticket_tags").insert({"ticket_id": ticket, "tag_id": tag["id"]}).execute()
    shared = (
        as_("admin")
        .table("canned_replies")
        .insert({"title": "Refund", "body": "We refunded {{ticket.id}}"})
        .execute()
        .data[0]
    )
    personal = (
        as_("agent")
        .table("canned_replies")
        .insert({"owner_id": users.agent.id, "title": "Mine", "body": "Personal greeting"})
        .execute()
        .data[0]
    )
    macro = (
        as_("admin")
        .table("macros")
        .insert(
            {"name": "Close as refunded", "reply": "Done!", "actions": {"status": "resolved", "add_tags": [tag["id"]]}}
        )
        .execute()
        .data[0]
    )
    view = (
        as_("agent").table("saved_views").insert({"name": "VIPs", "filters": {"tags": [tag["id"]]}}).execute().data[0]
    )
    note = (
        as_("agent")
        .table("customer_notes")
        .insert({"customer_id": users.customer.id, "body": "shouts a lot"})
        .execute()
        .data[0]
    )
    say(as_, "customer", ticket, "hello?")
    as_("agent").table("tickets").update({"status": "pending"}).eq("id", ticket).execute()
    snooze(as_("agent"), ticket, (datetime.now(UTC) + timedelta(days=1)).isoformat())
    message = say(as_, "agent", ticket, f"@[Agent Two]({users.agent2.id}) please take over", is_internal=True)
    return {
        "ticket": ticket,
        "tag": tag["id"],
        "shared": shared["id"],
        "personal": personal["id"],
        "macro": macro["id"],
        "view": view["id"],
        "note": note["id"],
        "message": message,
    }


@pytest.mark.parametrize("table", STAFF_TABLES)
def test_customers_read_none_of_it(as_: As, workspace: dict[str, str], table: str) -> None:
    if table not in ("sla_business_hours", "sla_holidays"):  # empty by default; the others have rows for staff
        staff = "agent2" if table == "mentions" else "agent"
        assert as_(staff).table(table).select("*").limit(1).execute().data
    for who in ("customer", "customer2"):
        assert as_(who).table(table).select("*").execute().data == []
        if table in SYNCED:
            assert as_(who).rpc(f"sync_{table}", {}).execute().data == []
    refused(lambda: as_("anon").table(table).select("*").execute())


def test_customers_write_none_of_it(as_: As, users: Users, workspace: dict[str, str]) -> None:
    c = as_("customer")
    refused(lambda: c.table("canned_replies").insert({"title": "x", "body": "y"}).execute())
    refused(
        lambda: c.table("canned_replies").insert({"owner_id": users.customer.id, "title": "x", "body": "y"}).execute()
    )
    refused(lambda: c.table("macros").insert({"owner_id": users.customer.id, "name": "x"}).execute())
    refused(lambda: c.table("tags").insert({"name": "mine"}).execute())
    refused(
        lambda: c.table("ticket_tags").insert({"ticket_id": workspace["ticket"], "tag_id": workspace["tag"]}).execute()
    )
    refused(lambda: c.table("saved_views").insert({"name": "mine"}).execute())
    refused(lambda: c.table("customer_notes").insert({"customer_id": users.customer.id, "body": "I am nice"}).execute())
    refused(lambda: c.table("sla_holidays").insert({"day": "2030-01-01"}).execute())
    refused(lambda: c.table("ticket_sla").insert({"ticket_id": workspace["ticket"]}).execute())
    assert c.table("sla_targets").update({"first_response_minutes": 1}).eq("priority", "normal").execute().data == []
    assert (
        c.table("ticket_tags").update({"removed_at": "now"}).eq("ticket_id", workspace["ticket"]).execute().data == []
    )
    refused(lambda: snooze(c, workspace["ticket"], "2030-01-01T00:00:00Z"))
    assert (
        c.table("ticket_snoozes").update({"snoozed_until": None}).eq("ticket_id", workspace["ticket"]).execute().data
        == []
    )
    refused(lambda: c.rpc("wake_snoozed_tickets", {}).execute())


def test_shared_items_are_admins_and_personal_ones_their_owners(
    as_: As, users: Users, workspace: dict[str, str]
) -> None:
    agent, agent2 = as_("agent"), as_("agent2")
    refused(lambda: agent.table("canned_replies").insert({"title": "shared?", "body": "no"}).execute())
    refused(
        lambda: (
            agent.table("canned_replies")
            .insert({"owner_id": users.agent2.id, "title": "for you", "body": "no"})
            .execute()
        )
    )
    refused(lambda: agent.table("macros").insert({"name": "shared?"}).execute())
    assert agent.table("canned_replies").update({"body": "hijacked"}).eq("id", workspace["shared"]).execute().data == []
    assert workspace["personal"] not in {r["id"] for r in agent2.table("canned_replies").select("id").execute().data}
    assert agent2.table("canned_replies").update({"body": "x"}).eq("id", workspace["personal"]).execute().data == []
    refused(lambda: agent.table("canned_replies").update({"owner_id": None}).eq("id", workspace["personal"]).execute())
    # no hard deletes: a tombstone the pulls carry
    refused(lambda: agent.table("canned_replies").delete().eq("id", workspace["personal"]).execute())
    gone = agent.table("canned_replies").update({"deleted_at": "now"}).eq("id", workspace["personal"]).execute().data[0]
    assert gone["deleted_at"] is not None
    refused(
        lambda: agent.table("canned_replies").update({"deleted_at": None}).eq("id", workspace["personal"]).execute()
    )
    assert workspace["personal"] in {r["id"] for r in agent.rpc("sync_canned_replies", {}).execute().data}
    assert workspace["view"] not in {r["id"] for r in agent2.table("saved_views").select("id").execute().data}
    assert {r["id"] for r in agent.table("macros").select("id").execute().data} >= {workspace["macro"]}


def test_macro_actions_are_checked(as_: As) -> None:
    admin = as_("admin")
    for bad in ({"status": "deleted"}, {"assignee": "someone"}, {"add_tags": "vip"}, {"launch": "missiles"}, []):
        refused(
            lambda bad=bad: admin.table("macros").insert({"name": "bad", "actions": bad}).execute(),  # type: ignore[misc]
            "23514",
        )
    ok = admin.table("macros").insert({"name": "ok", "actions": {"assignee": "me", "priority": "high"}}).execute()
    assert ok.data[0]["actions"] == {"assignee": "me", "priority": "high"}


def test_tags_are_admin_defined_and_staff_apply_them_where_they_see_the_ticket(
    as_: As, users: Users, workspace: dict[str, str]
) -> None:
    refused(lambda: as_("agent").table("tags").insert({"name": "agent-made"}).execute())
    refused(lambda: as_("admin").table("tags").insert({"name": f"VIP-{workspace['ticket'][:8]}"}).execute(), "23505")
    refused(lambda: as_("admin").table("tags").insert({"name": "bad colour", "color": "red"}).execute(), "23514")
    theirs = new_ticket(as_, users)  # assigned to agent: agent2 cannot see it
    refused(
        lambda: as_("agent2").table("ticket_tags").insert({"ticket_id": theirs, "tag_id": workspace["tag"]}).execute()
    )
    row = (
        as_("agent")
        .table("ticket_tags")
        .insert({"ticket_id": theirs, "tag_id": workspace["tag"], "added_by": users.agent2.id})
        .execute()
        .data[0]
    )
    assert row["added_by"] == users.agent.id  # the server's, not the client's
    removed = as_("agent").table("ticket_tags").update({"removed_at": "now"}).eq("ticket_id", theirs).execute().data[0]
    assert removed["removed_at"] is not None
    again = (
        as_("agent")
        .table("ticket_tags")
        .upsert({"ticket_id": theirs, "tag_id": workspace["tag"], "removed_at": None})
        .execute()
        .data[0]
    )
    assert again["removed_at"] is None


def test_customer_notes_are_staff_only_and_their_authors(as_: As, users: Users, workspace: dict[str, str]) -> None:
    assert as_("agent2").table("customer_notes").select("body").eq("id", workspace["note"]).execute().data == [
        {"body": "shouts a lot"}
    ]
    assert (
        as_("agent2").table("customer_notes").update({"body": "rewritten"}).eq("id", workspace["note"]).execute().data
        == []
    )
    refused(
        lambda: as_("agent").table("customer_notes").insert({"customer_id": users.agent2.id, "body": "x"}).execute(),
        "23514",
    )
    forged = (
        as_("agent")
        .table("customer_notes")
        .insert({"customer_id": users.customer.id, "body": "by someone else?", "author_id": users.admin.id})
        .execute()
    )
    assert forged.data[0]["author_id"] == users.agent.id  # the server's, not the client's
    edited = (
        as_("admin")
        .table("customer_notes")
        .update({"body": "speaks loudly"})
        .eq("id", workspace["note"])
        .execute()
        .data[0]
    )
    assert edited["body"] == "speaks loudly" and edited["author_id"] == users.agent.id


def test_mentions_reach_only_the_mentioned(as_: As, users: Users, workspace: dict[str, str]) -> None:
    mine = as_("agent2").table("mentions").select("*").eq("message_id", workspace["message"]).execute().data
    assert [(m["mentioned_id"], m["author_id"]) for m in mine] == [(users.agent2.id, users.agent.id)]
    assert as_("agent").table("mentions").select("*").eq("message_id", workspace["message"]).execute().data == []
    seen = as_("agent2").table("mentions").update({"seen_at": "now"}).eq("id", mine[0]["id"]).execute().data[0]
    assert seen["seen_at"] is not None
    refused(
        lambda: (
            as_("agent2").table("mentions").update({"mentioned_id": users.agent.id}).eq("id", mine[0]["id"]).execute()
        )
    )


def test_snooze_wakes_on_the_server_and_on_a_customer_reply(as_: As, users: Users) -> None:
    agent = as_("agent")
    ticket = new_ticket(as_, users)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    # a ticket that is not pending has no snooze: the guard clears the time
    assert snooze(agent, ticket, future)["snoozed_until"] is None
    agent.table("tickets").update({"status": "pending"}).eq("id", ticket).execute()
    row = snooze(agent, ticket, past)
    assert row["snoozed_until"] is not None and row["updated_by"] == users.agent.id
    assert agent.rpc("wake_snoozed_tickets", {}).execute().data >= 1
    assert agent.table("tickets").select("status").eq("id", ticket).single().execute().data["status"] == "open"
    assert snoozed(agent, ticket) == [{"snoozed_until": None}]
    agent.table("tickets").update({"status": "pending"}).eq("id", ticket).execute()
    snooze(agent, ticket, future)
    agent.rpc("wake_snoozed_tickets", {}).execute()
    assert agent.table("tickets").select("status").eq("id", ticket).single().execute().data["status"] == "pending"
    say(as_, "customer", ticket, "any news?")
    assert agent.table("tickets").select("status").eq("id", ticket).single().execute().data["status"] == "open"
    assert snoozed(agent, ticket) == [{"snoozed_until": None}]


def sla(as_: As, ticket: str) -> dict[str, Any]:
    return dict(as_("agent").table("ticket_sla").select("*").eq("ticket_id", ticket).single().execute().data)


def test_sla_due_times_come_from_server_timestamps_and_notes_do_not_count(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users, priority="urgent")
    created = ts(
        as_("service").table("tickets").select("created_at").eq("id", ticket).single().execute().data["created_at"]
    )
    row = sla(as_, ticket)
    assert ts(row["first_response_due_at"]) == created + timedelta(minutes=60)
    assert row["awaiting_reply_since"] is None and row["next_response_due_at"] is None
    say(as_, "customer", ticket, "urgent!")
    say(as_, "agent", ticket, "on it")  # the first response
    say(as_, "customer", ticket, "still broken")
    row = sla(as_, ticket)
    waiting = ts(row["awaiting_reply_since"])
    assert ts(row["next_response_due_at"]) == waiting + timedelta(minutes=60)
    say(as_, "agent", ticket, "internal: ask the devs", is_internal=True)
    assert sla(as_, ticket)["awaiting_reply_since"] == row["awaiting_reply_since"]
    as_("admin").table("tickets").update({"priority": "low"}).eq("id", ticket).execute()
    assert ts(sla(as_, ticket)["next_response_due_at"]) == waiting + timedelta(minutes=1440)
    say(as_, "agent", ticket, "fixed now")
    row = sla(as_, ticket)
    assert (row["awaiting_reply_since"], row["next_response_due_at"]) == (None, None)


@pytest.fixture
def business_hours(stack: StackProcess) -> Iterator[psycopg.Connection]:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        yield conn
        conn.execute("delete from public.sla_business_hours")
        conn.execute("delete from public.sla_holidays")
        conn.execute("update public.sla_settings set timezone = 'UTC'")


def test_business_hours_holidays_and_time_zone(business_hours: psycopg.Connection, as_: As) -> None:
    conn = business_hours
    admin = as_("admin")
    admin.table("sla_business_hours").insert(
        [{"weekday": d, "opens": "09:00", "closes": "17:00"} for d in range(1, 6)]
    ).execute()
    admin.table("sla_holidays").insert({"day": "2026-12-07", "name": "a Monday off"}).execute()
    refused(lambda: as_("agent").table("sla_holidays").insert({"day": "2026-12-08"}).execute())

    def due(start: str, minutes: int) -> datetime:
        row = conn.execute("select private.add_business_minutes(%s::timestamptz, %s)", (start, minutes)).fetchone()
        assert row is not None
        return row[0]

    # Friday 16:30 UTC + 60 business minutes: 30 on Friday, Monday is a holiday, 30 on Tuesday
    assert due("2026-12-04T16:30:00Z", 60) == datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
    assert due("2026-12-05T12:00:00Z", 10) == datetime(2026, 12, 8, 9, 10, tzinfo=UTC)  # Saturday
    admin.table("sla_settings").update({"timezone": "Europe/Berlin"}).eq("id", True).execute()
    # 08:30 UTC on a Wednesday is 09:30 in Berlin: open already
    assert due("2026-12-09T08:30:00Z", 30) == datetime(2026, 12, 9, 9, 0, tzinfo=UTC)
    with pytest.raises(APIError):
        admin.table("sla_settings").update({"timezone": "Mars/Olympus"}).eq("id", True).execute()


def test_every_synced_table_is_in_the_realtime_publication(stack: StackProcess) -> None:
    with psycopg.connect(stack.db_url) as conn:
        published = {
            r[0]
            for r in conn.execute(
                "select tablename from pg_publication_tables where pubname = 'supabase_realtime'"
                " and schemaname = 'public'"
            ).fetchall()
        }
    assert published >= {*STAFF_TABLES, "app_settings", "message_revisions", "notification_preferences"}
    assert "notifications" not in published
