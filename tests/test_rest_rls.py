"""The RLS matrix through /rest/v1, written as an attacker would: every request is an official
supabase-py call carrying one user's token, and PostgreSQL (not localbase) must refuse it.

World: customer owns t_open (unassigned) and t_agent2 (assigned to agent2) and t_closed; customer2
owns t_other (assigned to agent). agent wrote an internal note on t_open.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError
from postgrest.types import ReturnMethod
from supabase import Client

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_rest_clients import ClientFactory, clients_fixture

uses_clients = clients_fixture
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")


@dataclass(frozen=True)
class World:
    t_open: str
    t_agent2: str
    t_closed: str
    t_other: str
    m_customer: str
    m_note: str
    m_other: str


@pytest.fixture(scope="module")
def as_(stack: StackProcess, users: Users, clients: ClientFactory) -> Callable[[str], Client]:
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


@pytest.fixture(scope="module")
def world(users: Users, as_: Callable[[str], Client]) -> World:
    svc = as_("service")

    def ticket(customer: str, subject: str, **extra: Any) -> str:
        return str(
            svc.table("tickets").insert({"customer_id": customer, "subject": subject, **extra}).execute().data[0]["id"]
        )

    t_open = ticket(users.customer.id, "printer on fire")
    t_agent2 = ticket(users.customer.id, "billing", assignee_id=users.agent2.id)
    t_closed = ticket(users.customer.id, "done", status="closed")
    t_other = ticket(users.customer2.id, "other customer's secret", assignee_id=users.agent.id)
    m_customer = (
        as_("customer").table("messages").insert({"ticket_id": t_open, "content": "help"}).execute().data[0]["id"]
    )
    m_note = (
        as_("agent")
        .table("messages")
        .insert({"ticket_id": t_open, "content": "customer is rude", "is_internal": True})
        .execute()
        .data[0]["id"]
    )
    m_other = (
        as_("customer2")
        .table("messages")
        .insert({"ticket_id": t_other, "content": "my card number"})
        .execute()
        .data[0]["id"]
    )
    return World(t_open, t_agent2, t_closed, t_other, m_customer, m_note, m_other)


def refused(call: Callable[[], Any], code: str = "42501") -> APIError:
    with pytest.raises(APIError) as err:
        call()
    assert err.value.code == code, err.value
    return err.value


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {str(r["id"]) for r in rows}


# reading ----------------------------------------------------------------------------------------------


def test_customer_cannot_read_another_customers_tickets_or_messages(world: World, as_: Callable[[str], Client]) -> None:
    c2 = as_("customer2")
    assert c2.table("tickets").select("*").eq("id", world.t_open).execute().data == []
    assert c2.table("messages").select("*").eq("ticket_id", world.t_open).execute().data == []
    assert c2.table("messages").select("*").eq("id", world.m_customer).execute().data == []
    assert world.t_open not in ids(c2.table("tickets").select("id").execute().data)
    embedded = c2.table("tickets").select("id,messages(id)").execute().data
    assert all(world.m_customer != m["id"] for t in embedded for m in t["messages"])
    pulled = c2.rpc("sync_messages", {"after_xid": 0, "after_id": 0}).execute().data
    assert world.m_customer not in ids(pulled)
    assert world.m_other in ids(pulled)


def test_customer_never_reads_internal_notes(world: World, as_: Callable[[str], Client]) -> None:
    c = as_("customer")
    thread = c.table("messages").select("*").eq("ticket_id", world.t_open).execute().data
    assert ids(thread) == {world.m_customer}
    assert c.table("messages").select("*").eq("is_internal", True).execute().data == []
    embedded = c.table("tickets").select("id,messages(id,is_internal)").eq("id", world.t_open).single().execute()
    assert [m["id"] for m in embedded.data["messages"]] == [world.m_customer]
    assert world.m_note not in ids(c.rpc("sync_messages", {"after_xid": 0, "after_id": 0}).execute().data)
    # while the agent sees the note, and who wrote what through a many-to-one embedding
    rows = (
        as_("agent")
        .table("messages")
        .select("id,is_internal,sender:profiles(display_name,role)")
        .eq("ticket_id", world.t_open)
        .order("created_at")
        .execute()
        .data
    )
    assert [(r["id"], r["is_internal"], r["sender"]["role"]) for r in rows] == [
        (world.m_customer, False, "customer"),
        (world.m_note, True, "agent"),
    ]


def test_agent_sees_assigned_and_unassigned_only(world: World, as_: Callable[[str], Client]) -> None:
    seen = ids(as_("agent").table("tickets").select("id").execute().data)
    assert {world.t_open, world.t_other} <= seen
    assert world.t_agent2 not in seen
    assert as_("agent").table("messages").select("id").eq("ticket_id", world.t_agent2).execute().data == []
    seen2 = ids(as_("agent2").table("tickets").select("id").execute().data)
    assert world.t_agent2 in seen2
    assert world.t_other not in seen2


def test_admin_and_service_role_see_everything(world: World, as_: Callable[[str], Client]) -> None:
    everything = {world.t_open, world.t_agent2, world.t_closed, world.t_other}
    # asked by id: late in a full run the shared database holds more tickets than one response returns (the
    # project's max rows), so an unfiltered select need not include these
    wanted = sorted(everything)
    assert everything <= ids(as_("admin").table("tickets").select("id").in_("id", wanted).execute().data)
    assert everything <= ids(as_("service").table("tickets").select("id").in_("id", wanted).execute().data)
    assert world.m_note in ids(as_("service").table("messages").select("id").eq("id", world.m_note).execute().data)


def test_anon_sees_and_writes_nothing(world: World, as_: Callable[[str], Client], stack: StackProcess) -> None:
    anon = as_("anon")
    for table in ("tickets", "messages", "profiles", "ticket_reads"):
        refused(lambda t=table: anon.table(t).select("*").execute())  # type: ignore[misc]
    refused(lambda: anon.table("tickets").insert({"subject": "spam"}).execute())
    refused(lambda: anon.table("messages").insert({"ticket_id": world.t_open, "content": "spam"}).execute())
    refused(lambda: anon.rpc("sync_messages", {"after_xid": 0, "after_id": 0}).execute())
    r = httpx.get(
        f"{stack.api_url}/rest/v1/tickets",
        headers={"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}"},
    )
    assert r.status_code == 401  # 42501 as the anon role is 401, as PostgREST answers


# writing -----------------------------------------------------------------------------------------------


def test_spoofed_sender_is_refused(world: World, users: Users, as_: Callable[[str], Client]) -> None:
    refused(
        lambda: (
            as_("customer")
            .table("messages")
            .insert({"ticket_id": world.t_open, "content": "I am the agent", "sender_id": users.agent.id})
            .execute()
        )
    )
    refused(
        lambda: (
            as_("agent")
            .table("messages")
            .insert({"ticket_id": world.t_open, "content": "I am the customer", "sender_id": users.customer.id})
            .execute()
        )
    )


def test_writing_into_someone_elses_ticket_is_refused(world: World, as_: Callable[[str], Client]) -> None:
    refused(lambda: as_("customer2").table("messages").insert({"ticket_id": world.t_open, "content": "hi"}).execute())
    refused(
        lambda: (
            as_("agent").table("messages").insert({"ticket_id": world.t_agent2, "content": "not my ticket"}).execute()
        )
    )
    # and return=minimal does not turn a refused insert into a silent success
    refused(
        lambda: (
            as_("customer2")
            .table("messages")
            .insert({"ticket_id": world.t_open, "content": "hi"}, returning="minimal")
            .execute()
        )
    )


def test_customer_cannot_write_internal_notes(world: World, as_: Callable[[str], Client]) -> None:
    refused(
        lambda: (
            as_("customer")
            .table("messages")
            .insert({"ticket_id": world.t_open, "content": "psst", "is_internal": True})
            .execute()
        )
    )
    own = as_("customer").table("messages").insert({"ticket_id": world.t_open, "content": "public"}).execute()
    refused(
        lambda: as_("customer").table("messages").update({"is_internal": True}).eq("id", own.data[0]["id"]).execute()
    )


def test_self_promotion_is_refused(users: Users, as_: Callable[[str], Client]) -> None:
    for who in ("customer", "agent"):
        me = getattr(users, who).id
        refused(
            lambda me=me, who=who: (
                as_(who)
                .table("profiles")
                .update({"role": "admin"})  # type: ignore[misc]
                .eq("id", me)
                .execute()
            )
        )
        assert as_(who).table("profiles").select("role").eq("id", me).single().execute().data["role"] == who
    # someone else's profile is not even visible for update
    assert (
        as_("customer").table("profiles").update({"display_name": "pwned"}).eq("id", users.customer2.id).execute().data
        == []
    )
    # a harmless change of one's own profile is fine
    renamed = as_("customer").table("profiles").update({"display_name": "Cust"}).eq("id", users.customer.id).execute()
    assert renamed.data[0]["display_name"] == "Cust"
    # put the shared user's name back: later tests (sync, app) compare against it
    as_("customer").table("profiles").update({"display_name": users.customer.name}).eq(
        "id", users.customer.id
    ).execute()
    # the admin changes roles
    promoted = as_("admin").table("profiles").update({"role": "agent"}).eq("id", users.customer2.id).execute()
    assert promoted.data[0]["role"] == "agent"
    as_("admin").table("profiles").update({"role": "customer"}).eq("id", users.customer2.id).execute()


def test_agent_cannot_assign_to_others_but_takes_unassigned(
    world: World, users: Users, as_: Callable[[str], Client]
) -> None:
    agent = as_("agent")
    refused(lambda: agent.table("tickets").update({"assignee_id": users.agent2.id}).eq("id", world.t_other).execute())
    assert agent.table("tickets").update({"priority": "high"}).eq("id", world.t_agent2).execute().data == []
    svc = as_("service")
    fresh = svc.table("tickets").insert({"customer_id": users.customer.id, "subject": "take me"}).execute().data[0]
    taken = agent.table("tickets").update({"assignee_id": users.agent.id}).eq("id", fresh["id"]).execute().data
    assert taken[0]["assignee_id"] == users.agent.id
    assert fresh["id"] not in ids(as_("agent2").table("tickets").select("id").execute().data)
    assigned = (
        as_("admin").table("tickets").update({"assignee_id": users.agent2.id}).eq("id", fresh["id"]).execute().data
    )
    assert assigned[0]["assignee_id"] == users.agent2.id


def test_customer_cannot_create_tickets_for_others_or_preassigned(users: Users, as_: Callable[[str], Client]) -> None:
    c = as_("customer")
    refused(lambda: c.table("tickets").insert({"subject": "x", "customer_id": users.customer2.id}).execute())
    refused(lambda: c.table("tickets").insert({"subject": "x", "assignee_id": users.agent.id}).execute())
    mine = c.table("tickets").insert({"subject": "mine"}).execute().data[0]
    assert mine["customer_id"] == users.customer.id


def test_closed_ticket_refuses_customer_messages(world: World, as_: Callable[[str], Client]) -> None:
    refused(
        lambda: (
            as_("customer")
            .table("messages")
            .insert({"ticket_id": world.t_closed, "content": "reopen please"})
            .execute()
        )
    )
    refused(lambda: as_("customer").table("tickets").update({"status": "open"}).eq("id", world.t_closed).execute())


def test_messages_cannot_be_rewritten(world: World, users: Users, as_: Callable[[str], Client]) -> None:
    # another user's message: not visible for update, nothing changes
    assert (
        as_("agent").table("messages").update({"content": "edited by agent"}).eq("id", world.m_customer).execute().data
        == []
    )
    c = as_("customer")
    mine = c.table("messages").insert({"ticket_id": world.t_open, "content": "original"}).execute().data[0]
    for change in (
        {"sender_id": users.agent.id},
        {"ticket_id": world.t_agent2},
        {"created_at": "2000-01-01T00:00:00+00:00"},
    ):
        refused(lambda change=change: c.table("messages").update(change).eq("id", mine["id"]).execute())  # type: ignore[misc]
    edited = c.table("messages").update({"content": "fixed typo"}).eq("id", mine["id"]).execute().data[0]
    assert (edited["content"], edited["created_at"]) == ("fixed typo", mine["created_at"])
    assert edited["edited_at"] is not None
    # nobody deletes messages (soft delete only): no DELETE grant, so the API refuses it outright
    refused(lambda: c.table("messages").delete().eq("id", mine["id"]).execute())


def test_client_sent_created_at_is_ignored(world: World, as_: Callable[[str], Client]) -> None:
    row = (
        as_("customer")
        .table("messages")
        .insert({"ticket_id": world.t_open, "content": "time traveller", "created_at": "1999-12-31T23:59:59+00:00"})
        .execute()
        .data[0]
    )
    assert not row["created_at"].startswith("1999")


def test_service_role_token_bypasses_rls(world: World, users: Users, stack: StackProcess) -> None:
    r = httpx.get(
        f"{stack.api_url}/rest/v1/messages?select=id&id=eq.{world.m_note}",
        headers={"apikey": stack.anon_key, "Authorization": f"Bearer {stack.service_role_key}"},
    )
    assert r.json() == [{"id": world.m_note}]
    minted = stack.mint(role="service_role")
    r = httpx.get(
        f"{stack.api_url}/rest/v1/messages?select=id&id=eq.{world.m_other}",
        headers={"apikey": stack.anon_key, "Authorization": f"Bearer {minted}"},
    )
    assert r.json() == [{"id": world.m_other}]


def test_signed_in_session_token_drives_rls(
    world: World, users: Users, stack: StackProcess, clients: ClientFactory
) -> None:
    """The real /auth/v1 sign-in: the session's access token is what REST sees."""
    c = clients(None)
    c.auth.sign_in_with_password({"email": users.customer2.email, "password": users.customer2.password})
    assert ids(c.table("messages").select("id").eq("ticket_id", world.t_other).execute().data) >= {world.m_other}
    assert c.table("tickets").select("id").eq("id", world.t_open).execute().data == []


def test_idempotent_push_and_upsert_attacks(world: World, users: Users, as_: Callable[[str], Client]) -> None:
    """The sync engine pushes with upsert-on-id ignore-duplicates; a replay changes nothing, and an upsert
    aimed at someone else's message id neither overwrites it nor reveals it."""
    c = as_("customer")
    msg = {"id": str(uuid.uuid4()), "ticket_id": world.t_open, "content": "sent once"}
    for _ in range(3):
        c.table("messages").upsert(
            msg, on_conflict="id", ignore_duplicates=True, returning=ReturnMethod.minimal
        ).execute()
    assert len(c.table("messages").select("id").eq("id", msg["id"]).execute().data) == 1
    attack = {"id": world.m_other, "ticket_id": world.t_open, "content": "overwritten"}
    refused(lambda: c.table("messages").upsert(attack, on_conflict="id").execute())
    assert c.table("messages").upsert(attack, on_conflict="id", ignore_duplicates=True).execute().data == []
    original = as_("service").table("messages").select("content,ticket_id").eq("id", world.m_other).single().execute()
    assert original.data == {"content": "my card number", "ticket_id": world.t_other}
