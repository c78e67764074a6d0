"""Edit and delete with history, hidden read receipts, and the notification tables, as an attacker would
(issue 13, server side): every request is a supabase-py call carrying one user's token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from supabase import Client

from tests.conftest import Users
from tests.test_history_rls import As, as_, message_row, new_ticket, refused, say
from tests.test_rest_clients import clients_fixture

uses_clients = clients_fixture
uses_as = as_
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")


def backdate(db_url: str, message_id: str, minutes: int) -> None:
    """Move a message's server timestamp into the past (triggers off, as an arrangement only)."""
    with psycopg.connect(db_url) as conn, conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute(
            "update public.messages set created_at = created_at - make_interval(mins => %s) where id = %s",
            (minutes, message_id),
        )


def revisions(client: Client, message_id: str) -> list[dict[str, Any]]:
    return list(
        client.table("message_revisions").select("*").eq("message_id", message_id).order("replaced_at").execute().data
    )


@pytest.fixture
def settings(as_: As) -> Iterator[Client]:
    """The service client; the project's settings are restored after the test."""
    svc = as_("service")
    before = svc.table("app_settings").select("*").single().execute().data
    yield svc
    svc.table("app_settings").update(
        {
            "edit_window_seconds": before["edit_window_seconds"],
            "customers_see_read_receipts": before["customers_see_read_receipts"],
        }
    ).eq("id", True).execute()


# edit -------------------------------------------------------------------------------------------------


def test_sender_edits_within_the_window_and_staff_see_the_revisions(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users)
    mine = say(as_, "customer", ticket, "my order is 1234")
    c = as_("customer")
    edited = (
        c.table("messages")
        .update({"content": "my order is 1243", "edited_at": "2001-01-01T00:00:00Z"})
        .eq("id", mine)
        .execute()
        .data[0]
    )
    assert edited["content"] == "my order is 1243"
    assert edited["edited_at"] is not None and not edited["edited_at"].startswith("2001")
    c.table("messages").update({"content": "my order is 1243, thanks"}).eq("id", mine).execute()
    for staff in ("agent", "admin"):
        assert [r["content"] for r in revisions(as_(staff), mine)] == ["my order is 1234", "my order is 1243"]
    # the customer only ever sees "edited"
    assert revisions(c, mine) == []
    assert mine not in {r["message_id"] for r in c.rpc("sync_message_revisions", {}).execute().data}
    assert mine in {r["message_id"] for r in as_("agent").rpc("sync_message_revisions", {}).execute().data}
    # an agent not on the ticket's side (another agent's ticket) sees nothing either
    assert revisions(as_("agent2"), mine) == []


def test_nobody_edits_another_users_message(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users)
    theirs = say(as_, "customer", ticket, "original words")
    assert (
        as_("agent").table("messages").update({"content": "put in their mouth"}).eq("id", theirs).execute().data == []
    )
    refused(lambda: as_("admin").table("messages").update({"content": "admin rewrite"}).eq("id", theirs).execute())
    assert as_("customer2").table("messages").update({"content": "x"}).eq("id", theirs).execute().data == []
    assert message_row(as_, theirs)["content"] == "original words"
    assert revisions(as_("admin"), theirs) == []


def test_no_edit_after_the_window(as_: As, users: Users, stack: Any, settings: Client) -> None:
    ticket = new_ticket(as_, users)
    mine = say(as_, "agent", ticket, "sent a while ago")
    backdate(stack.db_url, mine, 16)
    err = refused(lambda: as_("agent").table("messages").update({"content": "late fix"}).eq("id", mine).execute())
    assert "edit window" in err.message
    # the window is the server's setting: widen it and the same edit goes through
    settings.table("app_settings").update({"edit_window_seconds": 3600}).eq("id", True).execute()
    assert as_("agent").table("messages").update({"content": "late fix"}).eq("id", mine).execute().data
    settings.table("app_settings").update({"edit_window_seconds": 0}).eq("id", True).execute()
    refused(lambda: as_("agent").table("messages").update({"content": "again"}).eq("id", mine).execute())


def test_only_admins_change_the_settings(as_: As, settings: Client) -> None:
    for who in ("customer", "agent"):
        assert as_(who).table("app_settings").select("edit_window_seconds").execute().data  # readable
        assert (
            as_(who).table("app_settings").update({"edit_window_seconds": 999999}).eq("id", True).execute().data == []
        )
    refused(lambda: as_("admin").table("app_settings").insert({"id": False}).execute())
    assert (
        as_("admin")
        .table("app_settings")
        .update({"edit_window_seconds": 600})
        .eq("id", True)
        .execute()
        .data[0]["edit_window_seconds"]
        == 600
    )
    refused(lambda: as_("anon").table("app_settings").select("*").execute(), "42501")


# delete ------------------------------------------------------------------------------------------------


def test_delete_clears_content_and_revisions_everywhere(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users)
    mine = say(as_, "customer", ticket, "my password is hunter2")
    c = as_("customer")
    c.table("messages").update({"content": "my password is hunter3"}).eq("id", mine).execute()
    assert len(revisions(as_("agent"), mine)) == 1
    c.table("messages").update({"deleted_at": "now"}).eq("id", mine).execute()
    for who in ("customer", "agent", "admin", "service"):
        row = as_(who).table("messages").select("*").eq("id", mine).single().execute().data
        assert (row["content"], row["deleted_by"]) == ("", users.customer.id)
        assert row["deleted_at"] is not None and row["sender_id"] == users.customer.id
        if who != "service":  # the sync_* pulls are the app's, executable by authenticated only
            pulled = {
                r["id"]: r
                for r in as_(who).rpc("sync_messages", {"after_xid": 0, "after_id": 0, "max_rows": 1000}).execute().data
            }
            if mine in pulled:
                assert pulled[mine]["content"] == ""
        embedded = as_(who).table("tickets").select("messages(id,content)").eq("id", ticket).single().execute()
        assert [m["content"] for m in embedded.data["messages"] if m["id"] == mine] == [""]
    assert revisions(as_("admin"), mine) == []
    assert revisions(as_("service"), mine) == []
    # the text is nowhere in the database any more (the tombstone and no revision)
    svc_hits = as_("service").table("message_revisions").select("id").ilike("content", "%hunter%").execute().data
    assert svc_hits == []
    assert as_("service").table("messages").select("id").ilike("content", "%hunter%").execute().data == []


def test_who_may_delete(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users)
    theirs = say(as_, "customer", ticket, "customer words")
    # another user's message: an agent cannot even target it, a second customer neither
    assert as_("agent").table("messages").update({"deleted_at": "now"}).eq("id", theirs).execute().data == []
    assert as_("customer2").table("messages").update({"deleted_at": "now"}).eq("id", theirs).execute().data == []
    assert message_row(as_, theirs)["deleted_at"] is None
    # an admin may, and is recorded as the one who did
    as_("admin").table("messages").update({"deleted_at": "now"}).eq("id", theirs).execute()
    row = message_row(as_, theirs)
    assert (row["content"], row["deleted_by"]) == ("", users.admin.id)


def test_sender_cannot_delete_in_a_closed_ticket_but_an_admin_can(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users)
    mine = say(as_, "customer", ticket, "frozen with the ticket")
    as_("service").table("tickets").update({"status": "closed"}).eq("id", ticket).execute()
    refused(lambda: as_("customer").table("messages").update({"deleted_at": "now"}).eq("id", mine).execute())
    assert message_row(as_, mine)["content"] == "frozen with the ticket"
    as_("admin").table("messages").update({"deleted_at": "now"}).eq("id", mine).execute()
    assert message_row(as_, mine)["content"] == ""


# read receipts -----------------------------------------------------------------------------------------


def test_a_project_can_hide_read_receipts_from_customers(as_: As, users: Users, settings: Client) -> None:
    ticket = new_ticket(as_, users)
    say(as_, "customer", ticket, "did you read this?")
    as_("agent").table("ticket_reads").upsert({"ticket_id": ticket}).execute()
    as_("customer").table("ticket_reads").upsert({"ticket_id": ticket}).execute()

    def readers(who: str) -> set[str]:
        rows = as_(who).table("ticket_reads").select("user_id").eq("ticket_id", ticket).execute().data
        pulled = as_(who).rpc("sync_ticket_reads", {}).execute().data
        return {r["user_id"] for r in rows} | {r["user_id"] for r in pulled if r["ticket_id"] == ticket}

    assert readers("customer") == {users.customer.id, users.agent.id}
    settings.table("app_settings").update({"customers_see_read_receipts": False}).eq("id", True).execute()
    assert readers("customer") == {users.customer.id}
    assert readers("agent") == {users.customer.id, users.agent.id}  # staff always see the customer's


# notifications -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anon", "customer", "agent", "admin"])
def test_notification_rows_are_unreachable_to_clients(as_: As, users: Users, who: str) -> None:
    ticket = new_ticket(as_, users)
    say(as_, "agent", ticket, "a reply that queues a mail")
    assert as_("service").table("notifications").select("id").eq("ticket_id", ticket).execute().data
    client = as_(who)
    refused(lambda: client.table("notifications").select("*").execute())
    refused(lambda: client.table("notifications").update({"state": "sent"}).eq("ticket_id", ticket).execute())
    refused(lambda: client.table("notifications").delete().eq("ticket_id", ticket).execute())
    refused(
        lambda: (
            client.table("notifications")
            .insert({"recipient_id": users.customer.id, "ticket_id": ticket, "message_id": ticket, "reason": "reply"})
            .execute()
        )
    )
    states = as_("service").table("notifications").select("state").eq("ticket_id", ticket).execute().data
    assert states == [{"state": "queued"}]


def test_preferences_are_the_users_own(as_: As, users: Users) -> None:
    c = as_("customer")
    c.table("notification_preferences").upsert({"email": "always"}).execute()
    c.table("notification_preferences").upsert({"email": "unread", "unread_after_minutes": 30}).execute()
    mine = c.table("notification_preferences").select("*").execute().data
    assert [(r["user_id"], r["email"], r["unread_after_minutes"]) for r in mine] == [(users.customer.id, "unread", 30)]
    c2 = as_("customer2")
    assert c2.table("notification_preferences").select("*").eq("user_id", users.customer.id).execute().data == []
    refused(
        lambda: c2.table("notification_preferences").insert({"user_id": users.customer.id, "email": "never"}).execute()
    )
    assert (
        c2.table("notification_preferences").update({"email": "never"}).eq("user_id", users.customer.id).execute().data
        == []
    )
    refused(
        lambda: (
            c.table("notification_preferences")
            .update({"email": "sometimes"})
            .eq("user_id", users.customer.id)
            .execute()
        ),
        "23514",
    )
    refused(lambda: as_("anon").table("notification_preferences").select("*").execute())
    final = as_("service").table("notification_preferences").select("email").eq("user_id", users.customer.id)
    assert final.single().execute().data == {"email": "unread"}


def test_mentions_in_internal_notes_queue_only_staff(as_: As, users: Users) -> None:
    ticket = new_ticket(as_, users)
    note = say(
        as_,
        "agent",
        ticket,
        f"@[Second Agent]({users.agent2.id}) and @[Admin]({users.admin.id.upper()}) "
        f"see this; not @[Customer]({users.customer.id}) nor @[Me]({users.agent.id})",
        is_internal=True,
    )
    rows = as_("service").table("notifications").select("recipient_id,reason").eq("message_id", note).execute().data
    # agent2 cannot open a ticket assigned to agent: a mention must not mail them the note
    assert [(r["recipient_id"], r["reason"]) for r in rows] == [(users.admin.id, "mention")]
    unassigned = new_ticket(as_, users, assignee_id=None)
    note2 = say(as_, "agent", unassigned, f"@[Second Agent]({users.agent2.id}) can you take this?", is_internal=True)
    rows = as_("service").table("notifications").select("recipient_id,reason").eq("message_id", note2).execute().data
    assert [(r["recipient_id"], r["reason"]) for r in rows] == [(users.agent2.id, "mention")]
    plain_note = say(as_, "agent", ticket, "an internal note without mentions", is_internal=True)
    assert as_("service").table("notifications").select("id").eq("message_id", plain_note).execute().data == []
