"""review17: the migrations must grant the API roles the same on a project that still has Supabase's old default
privileges as on a new one (sql/migrations/20261129000100_api_grants.sql: "revoke everything, then grant exactly").

A project created before "default privileges for new entities" went off (Supabase's init script: everything
`postgres` creates in `public` granted ALL to anon, authenticated and service_role, and PostgreSQL's EXECUTE for
PUBLIC on functions) was left with more than a new one: `anon` and `authenticated` could use and `setval` the
notification queue's id sequence, `service_role` held TRUNCATE (which RLS does not govern), REFERENCES, TRIGGER
and MAINTAIN on sixteen tables and EXECUTE on `ticket_signal`; three tables (`grant all ... to service_role`)
gave it the first four on new projects too.
No API route reaches any of it (PostgREST issues no TRUNCATE and exposes no sequence), so it is defence in depth:
each role has exactly the door its migrations describe, whatever the project's age. Migration 20261215000110
takes the extra privileges back.

The test applies `sql/local` and every migration to a fresh database of the session stack's cluster with the old
defaults switched back on, as `postgres` (as `supabase db push` runs them), and compares every privilege the API
roles hold in `public` and `private` with the stack's own database (today's defaults).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from localbase import migrate
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(300)

API_ROLES = ("anon", "authenticated", "service_role")

# Supabase's init/00 for a project of before 2026-05-30 (what sql/local/0002 switches off), and PostgreSQL's own
# default for functions (EXECUTE for PUBLIC)
OLD_DEFAULTS = [
    *(
        f"alter default privileges for role postgres in schema public grant all on {kind} to {', '.join(API_ROLES)}"
        for kind in ("tables", "sequences", "functions")
    ),
    "alter default privileges for role postgres grant execute on functions to public",
]

# every privilege of the API roles (and PUBLIC) on relations, columns, functions and schemas of public and private
PRIVILEGES = """
with grantees(oid, name) as (
  select r.oid, r.rolname from pg_roles r where r.rolname = any(%(roles)s) union all select 0, 'PUBLIC'
), objects(kind, name, acl, owner) as (
  select 'relation', c.oid::regclass::text, coalesce(c.relacl, acldefault(
           case c.relkind when 'S' then 's'::"char" else 'r'::"char" end, c.relowner)), c.relowner
  from pg_class c
  where c.relnamespace in ('public'::regnamespace, 'private'::regnamespace) and c.relkind in ('r', 'v', 'm', 'S', 'p')
  union all
  select 'function', p.oid::regprocedure::text, coalesce(p.proacl, acldefault('f', p.proowner)), p.proowner
  from pg_proc p where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
  union all
  select 'schema', n.nspname, coalesce(n.nspacl, acldefault('n', n.nspowner)), n.nspowner
  from pg_namespace n where n.nspname in ('public', 'private')
)
select o.kind, o.name, g.name, a.privilege_type
from objects o cross join lateral aclexplode(o.acl) a join grantees g on g.oid = a.grantee
union all
select 'column', format('%%s.%%s', c.oid::regclass, t.attname), g.name, a.privilege_type
from pg_class c join pg_attribute t on t.attrelid = c.oid and t.attnum > 0 and not t.attisdropped
cross join lateral aclexplode(t.attacl) a join grantees g on g.oid = a.grantee
where c.relnamespace in ('public'::regnamespace, 'private'::regnamespace)
"""


def _privileges(conn: psycopg.Connection) -> set[tuple[str, str, str, str]]:
    return {tuple(r) for r in conn.execute(PRIVILEGES, {"roles": list(API_ROLES)}).fetchall()}  # type: ignore[misc]


@pytest.fixture
def old_project(stack: StackProcess) -> Iterator[psycopg.Connection]:
    """A database of the stack's cluster brought up as a project with the old default privileges."""
    name = "old_defaults_project"
    base = stack.db_url.rsplit("/", 1)[0]
    with psycopg.connect(stack.db_url, autocommit=True) as admin:
        admin.execute(f"drop database if exists {name}")
        admin.execute(f"create database {name}")
    try:
        with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
            migrate._apply_local(conn)
            for statement in OLD_DEFAULTS:
                conn.execute(statement)
            conn.execute("set role postgres")  # the migrations' owner, as on a project
            for migration in migrate.migrations():
                with conn.transaction():
                    conn.execute(migration.path.read_text())
            conn.execute("reset role")
            yield conn
    finally:
        with psycopg.connect(stack.db_url, autocommit=True) as admin:
            admin.execute(f"drop database if exists {name} with (force)")


def test_an_old_project_grants_the_api_roles_what_a_new_one_does(
    stack: StackProcess, old_project: psycopg.Connection
) -> None:
    with psycopg.connect(stack.db_url, autocommit=True) as new:
        today = _privileges(new)
    old = _privileges(old_project)
    assert sorted(old - today) == [], "an old project's API roles hold more than a new one's"
    assert sorted(today - old) == [], "an old project's API roles lack what a new one's hold"


def test_no_api_role_may_truncate_reference_trigger_or_maintain(stack: StackProcess) -> None:
    """TRUNCATE empties a table past RLS; REFERENCES, TRIGGER and MAINTAIN are the owner's business: no API role
    holds any of them, on any relation of public or private (sql/migrations/20261129000100_api_grants.sql)."""
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        held = sorted(
            (kind, name, role, privilege)
            for kind, name, role, privilege in _privileges(conn)
            if privilege in ("TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN")
        )
    assert held == []
