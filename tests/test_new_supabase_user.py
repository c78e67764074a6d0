"""Tried as a new Supabase customer would: every app flow on a database shaped like today's Supabase.

The session stack is that database: sql/local gives it Supabase's roles and defaults (no default
privileges for new objects, Auth writing as `supabase_auth_admin`, role timeouts), and the migrations
were applied by the non-superuser `postgres`, as `supabase db push` does. On it: sign-up through
/auth/v1, a new ticket and its first message pushed from the outbox, a reply pulled through the
`sync_*` functions and delivered by realtime, and realtime per role (an internal note reaches the
agent, never the customer). Before the explicit-grants migration every step failed with 42501.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from localbase import migrate
from sync import SyncEngine
from tests.conftest import User, Users
from tests.stackproc import StackProcess
from tests.test_rest_clients import ClientFactory, clients_fixture
from tests.test_sync_support import EngineFactory, sql, wait_for

uses_clients = clients_fixture
pytestmark = pytest.mark.timeout(180)


async def _online(engine: SyncEngine) -> SyncEngine:
    await engine.start()
    await wait_for(
        lambda: engine.status.state == "online" and engine.status.last_synced_at is not None, what="the first pull"
    )
    await wait_for(lambda: engine.remote.live.subscribed, what="realtime subscription")  # type: ignore[attr-defined]
    return engine


async def test_every_app_flow_works_on_a_supabase_shaped_database(
    stack: StackProcess, users: Users, engines: EngineFactory, clients: ClientFactory
) -> None:
    # the database: migrated by postgres, which is no superuser; nothing granted but by the migrations
    with psycopg.connect(stack.postgres_url) as conn:
        assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (False,)
        assert {r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")} == {
            m.version for m in migrate.migrations()
        }
        assert conn.execute(
            "select pg_get_userbyid(relowner) from pg_class where oid = 'public.messages'::regclass"
        ).fetchone() == ("postgres",)

    # sign-up: Auth writes auth.users as supabase_auth_admin; the profile comes from the definer trigger
    email = f"new-customer-{uuid.uuid4().hex[:8]}@example.com"
    signed_up = clients(None).auth.sign_up(
        {"email": email, "password": "a-new-customer-password", "options": {"data": {"display_name": "Newcomer"}}}
    )
    assert signed_up.user is not None
    customer = User(signed_up.user.id, email, "customer", "Newcomer", "a-new-customer-password")
    assert sql(stack.db_url, "select role, display_name from public.profiles where id = %s", customer.id) == [
        ("customer", "Newcomer")
    ]

    # new ticket + send: written locally, pushed from the outbox through REST as authenticated
    c = await _online(await engines.open(customer))
    ticket = c.commands.create_ticket("My printer is on fire", "It smokes since this morning")
    await wait_for(lambda: c.status.pending == 0, timeout=30, what="the outbox push")
    assert sql(stack.db_url, "select subject, customer_id::text from public.tickets where id = %s", ticket.id) == [
        ("My printer is on fire", customer.id)
    ]

    # the agent's engine pulls the new ticket (sync_* as authenticated) and answers; a note stays internal
    a = await _online(await engines.open(users.agent))
    a.wake(pull=True)
    await wait_for(lambda: a.cache.ticket(ticket.id) is not None, timeout=30, what="the agent's pull of the new ticket")
    note = a.commands.send_message(ticket.id, "Customer seems calm, low priority", internal=True)
    reply = a.commands.send_message(ticket.id, "Please unplug it, I am on my way")
    await wait_for(lambda: a.status.pending == 0, timeout=30, what="the agent's push")

    # realtime per role: the reply reaches the customer's cache, the internal note never does
    await wait_for(lambda: c.cache.message(reply.id) is not None, timeout=30, what="the reply by realtime")
    assert c.cache.message(note.id) is None, "an internal note reached a customer"
    follow_up = c.commands.send_message(ticket.id, "Unplugged, thanks")
    await wait_for(lambda: a.cache.message(follow_up.id) is not None, timeout=30, what="the customer's answer")
    assert sql(stack.db_url, "select count(*) from public.messages where ticket_id = %s", ticket.id) == [(4,)]
