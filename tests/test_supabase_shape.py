"""localbase is shaped like today's Supabase, so what would break on a project breaks here first.

Regression tests for "the product only works on its own imitation" (issue: runs on today's real
Supabase): sql/local used to grant every new table and function to the API roles by default, ran
migrations and Auth as the superuser, and had no role timeouts and no safeupdate. Each test below
failed on the stack before: a table without grants was reachable, a trigger without `security
definer` on auth.users worked, a migration could create objects in `auth`, a runaway RPC ran to the
end, an unfiltered PATCH updated every row.

Objects a test creates are throwaway (unique names) and are created as the `postgres` role, as a
migration on a project would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from realtime import RealtimeSubscribeStates
from supabase_auth.errors import AuthApiError

from tests.conftest import Users
from tests.realtime.support import close_all, listen, new_ticket, post, signed_in, wait_until
from tests.stackproc import StackProcess
from tests.test_rest_clients import ClientFactory, clients_fixture

uses_clients = clients_fixture
pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def owner(stack: StackProcess) -> Iterator[psycopg.Connection]:
    """A connection as the project's `postgres` role (what `supabase db push` uses), autocommit."""
    with psycopg.connect(stack.postgres_url, autocommit=True) as conn:
        yield conn


def rest(stack: StackProcess, token: str | None = None) -> dict[str, str]:
    return {"apikey": stack.anon_key, "Authorization": f"Bearer {token or stack.anon_key}"}


def test_roles_ownership_and_settings_are_supabase_s(db: psycopg.Connection) -> None:
    roles = {
        r[0]: r[1:]
        for r in db.execute(
            "select rolname, rolsuper, rolinherit, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication,"
            " rolcanlogin from pg_roles where rolname in ('postgres', 'supabase_admin', 'anon', 'authenticated',"
            " 'service_role', 'authenticator', 'supabase_auth_admin')"
        )
    }
    assert roles["postgres"] == (False, True, True, True, True, True, True)
    assert roles["supabase_admin"][0] is True
    for api_role in ("anon", "authenticated", "service_role"):
        assert roles[api_role][:2] == (False, True), f"{api_role} must be NOSUPERUSER INHERIT"
    assert roles["authenticator"][:2] == (False, False)
    assert roles["supabase_auth_admin"] == (False, False, False, False, False, False, True)
    settings = {
        (r[0], r[1])
        for r in db.execute(
            "select r.rolname, c from pg_db_role_setting s join pg_roles r on r.oid = s.setrole, unnest(s.setconfig) c"
        )
    }
    assert {
        ("anon", "statement_timeout=3s"),
        ("authenticated", "statement_timeout=8s"),
        ("authenticator", "statement_timeout=8s"),
        ("authenticator", "lock_timeout=8s"),
        ("supabase_auth_admin", "search_path=auth"),
    } <= settings
    auth = db.execute(
        "select pg_get_userbyid(n.nspowner), has_schema_privilege('postgres', 'auth', 'USAGE'),"
        " has_schema_privilege('postgres', 'auth', 'CREATE'), c.relrowsecurity, pg_get_userbyid(c.relowner),"
        " has_table_privilege('service_role', 'auth.users', 'SELECT'),"
        " has_table_privilege('authenticated', 'auth.users', 'SELECT'),"
        " has_table_privilege('postgres', 'auth.users', 'SELECT, TRIGGER'),"
        " pg_has_role('postgres', 'supabase_auth_admin', 'MEMBER')"
        " from pg_namespace n join pg_class c on c.relnamespace = n.oid and c.relname = 'users'"
        " where n.nspname = 'auth'"
    ).fetchone()
    assert auth == ("supabase_admin", True, False, True, "supabase_auth_admin", False, False, True, False)
    owners = {
        r[0]
        for r in db.execute(
            "select distinct pg_get_userbyid(relowner) from pg_class where relnamespace = 'public'::regnamespace"
            " and relname in ('profiles', 'tickets', 'messages', 'ticket_reads')"
        )
    }
    assert owners == {"postgres"}, "migrations run as postgres, so it owns the app's tables"


def test_new_objects_of_postgres_grant_nothing_by_default(owner: psycopg.Connection) -> None:
    name = f"nogrant_{uuid.uuid4().hex[:8]}"
    owner.execute(f"create table public.{name} (id int primary key)")
    owner.execute(f"create function public.{name}_fn() returns int language sql as 'select 1'")
    try:
        row = owner.execute(
            "select has_table_privilege('anon', %s, 'SELECT'), has_table_privilege('authenticated', %s, 'SELECT'),"
            " has_table_privilege('service_role', %s, 'SELECT'),"
            " has_function_privilege('authenticated', %s, 'EXECUTE'),"
            " has_function_privilege('anon', %s, 'EXECUTE')",
            (f"public.{name}",) * 3 + (f"public.{name}_fn()",) * 2,
        ).fetchone()
        assert row == (False, False, False, False, False)
    finally:
        owner.execute(f"drop function public.{name}_fn(); drop table public.{name}")


async def test_a_table_migrated_without_grants_is_unreachable_through_rest_and_realtime(
    stack: StackProcess, users: Users, owner: psycopg.Connection
) -> None:
    name = f"throwaway_{uuid.uuid4().hex[:8]}"
    # everything a migration does for a table, except the grants
    owner.execute(f"create table public.{name} (id uuid primary key default gen_random_uuid(), note text)")
    owner.execute(f"alter table public.{name} enable row level security")
    owner.execute(f"create policy {name}_read on public.{name} for select to authenticated using (true)")
    owner.execute(f"alter publication supabase_realtime add table public.{name}")
    try:
        token = stack.mint(users.admin.id)
        r = httpx.get(f"{stack.api_url}/rest/v1/{name}?select=*", headers=rest(stack, token))
        assert (r.status_code, r.json()["code"]) == (403, "42501"), r.text
        assert r.json()["message"] == f"permission denied for table {name}"
        r = httpx.get(f"{stack.api_url}/rest/v1/{name}?select=*", headers=rest(stack))
        assert (r.status_code, r.json()["code"]) == (401, "42501"), r.text

        admin = await signed_in(stack, users.admin)
        states: list[RealtimeSubscribeStates] = []
        systems: list[object] = []
        changes: list[dict[str, object]] = []
        channel = admin.channel(f"{name}-changes")
        channel.on_postgres_changes("*", changes.append, table=name, schema="public")
        channel.on_system(systems.append)
        await channel.subscribe(lambda s, _e: states.append(s))
        # whatever realtime answers (an error, or a subscription), it has answered before the writes
        await wait_until(
            lambda: bool(systems) or any(s != RealtimeSubscribeStates.SUBSCRIBED for s in states),
            what="the throwaway subscription's answer",
        )
        control = await listen(admin, f"{name}-control", {"event": "INSERT", "table": "messages"})
        owner.execute(f"insert into public.{name} (note) values ('must not be delivered')")
        ticket = new_ticket(stack.db_url, users.customer)
        post(stack.db_url, users.customer, ticket, f"sentinel after {name}")
        await control.wait_content(f"sentinel after {name}")  # commit order: the throwaway row came first
        assert changes == [], "a role without SELECT received rows of the table"
    finally:
        await close_all()
        owner.execute(f"drop table public.{name}")


def test_a_trigger_on_auth_users_without_security_definer_breaks_sign_up(
    stack: StackProcess, owner: psycopg.Connection, db: psycopg.Connection, clients: ClientFactory
) -> None:
    tag = uuid.uuid4().hex[:8]
    # a migration's classic mistake: the trigger function runs as the writer of auth.users, which on
    # Supabase is supabase_auth_admin, and it has no privilege on the app's tables
    owner.execute(f"create table public.audit_{tag} (user_id uuid primary key)")
    owner.execute(f"""create function public.audit_{tag}() returns trigger language plpgsql
                      set search_path = '' as $$
                      begin insert into public.audit_{tag} (user_id) values (new.id); return new; end $$""")
    owner.execute(f"""create trigger audit_{tag} after insert on auth.users for each row
                      when (new.email like 'audit-{tag}-%') execute function public.audit_{tag}()""")
    client = clients(None)
    try:
        with pytest.raises(AuthApiError) as err:
            client.auth.sign_up({"email": f"audit-{tag}-1@example.com", "password": "audit-password-1"})
        assert err.value.status == 500
        assert owner.execute(f"select count(*) from public.audit_{tag}").fetchone() == (0,)
        assert owner.execute(
            "select count(*) from auth.users where email = %s", (f"audit-{tag}-1@example.com",)
        ).fetchone() == (0,), "nothing half-created"
        # the fix Supabase's docs give: security definer (runs as its owner, postgres)
        owner.execute(f"alter function public.audit_{tag}() security definer")
        session = client.auth.sign_up({"email": f"audit-{tag}-2@example.com", "password": "audit-password-2"})
        assert session.user is not None
        assert owner.execute(f"select count(*) from public.audit_{tag}").fetchone() == (1,)
    finally:
        # as the superuser: Supabase lets postgres drop triggers on auth.users through supautils'
        # drop_trigger_grants, which localbase (without supautils) does not mirror
        db.execute(f"drop trigger audit_{tag} on auth.users")
        owner.execute(f"drop function public.audit_{tag}(); drop table public.audit_{tag}")


@pytest.mark.parametrize(
    "statement",
    [
        "create table auth.app_{tag} (id int)",
        "create function auth.app_{tag}() returns int language sql as 'select 1'",
        "create view auth.app_{tag} as select 1 as one",
    ],
)
def test_a_migration_cannot_create_objects_in_auth(owner: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for schema auth"):
        owner.execute(statement.format(tag=uuid.uuid4().hex[:8]))


def test_a_slow_rpc_is_cancelled_by_the_role_timeout_and_the_next_request_is_served_at_once(
    stack: StackProcess, owner: psycopg.Connection
) -> None:
    name = f"slow_{uuid.uuid4().hex[:8]}"
    owner.execute(f"create function public.{name}() returns int language sql as 'select 1 from pg_sleep(12)'")
    owner.execute(
        f"create function public.{name}_timeout() returns text language sql stable"
        " as $$ select current_setting('statement_timeout') $$"
    )
    owner.execute(f"grant execute on function public.{name}(), public.{name}_timeout() to anon, authenticated")
    try:
        with httpx.Client(timeout=30) as http:
            # the impersonated role's own setting holds inside the request, as PostgREST applies it
            assert http.post(f"{stack.api_url}/rest/v1/rpc/{name}_timeout", headers=rest(stack)).json() == "3s"
            assert (
                http.post(f"{stack.api_url}/rest/v1/rpc/{name}_timeout", headers=rest(stack, stack.mint())).json()
                == "8s"
            )
            started = time.monotonic()
            r = http.post(f"{stack.api_url}/rest/v1/rpc/{name}", headers=rest(stack))  # anon: 3 s
            took = time.monotonic() - started
            assert r.status_code == 500, r.text
            assert r.json() == {
                "code": "57014",
                "details": None,
                "hint": None,
                "message": "canceling statement due to statement timeout",
            }
            assert 2.5 < took < 8, f"cancelled after {took:.1f}s, not at anon's 3 s"
            started = time.monotonic()
            r = http.post(f"{stack.api_url}/rest/v1/rpc/{name}_timeout", headers=rest(stack))
            assert r.status_code == 200 and time.monotonic() - started < 1.5, "the server stayed responsive"
    finally:
        owner.execute(f"drop function public.{name}(), public.{name}_timeout()")


def test_an_unfiltered_patch_or_delete_is_refused_like_safeupdate(
    stack: StackProcess, users: Users, owner: psycopg.Connection, clients: ClientFactory
) -> None:
    name = f"notes_{uuid.uuid4().hex[:8]}"
    owner.execute(f"create table public.{name} (id int primary key, body text not null)")
    owner.execute(f"alter table public.{name} enable row level security")
    owner.execute(f"create policy {name}_all on public.{name} for all to authenticated using (true) with check (true)")
    owner.execute(f"grant select, update, delete on public.{name} to authenticated")
    owner.execute(f"insert into public.{name} values (1, 'one'), (2, 'two')")
    try:
        client = clients(stack.mint(users.customer.id))
        with pytest.raises(APIError) as err:
            client.table(name).update({"body": "overwritten"}).execute()
        assert (err.value.code, err.value.message) == ("21000", "UPDATE requires a WHERE clause")
        with pytest.raises(APIError) as err:
            client.table(name).delete().execute()
        assert (err.value.code, err.value.message) == ("21000", "DELETE requires a WHERE clause")
        r = httpx.patch(
            f"{stack.api_url}/rest/v1/{name}", json={"body": "x"}, headers=rest(stack, stack.mint(users.customer.id))
        )
        assert r.status_code == 400
        assert owner.execute(f"select body from public.{name} order by id").fetchall() == [("one",), ("two",)]
        # a filtered write is what safeupdate lets through
        assert client.table(name).update({"body": "uno"}).eq("id", 1).execute().data == [{"id": 1, "body": "uno"}]
    finally:
        owner.execute(f"drop table public.{name}")
