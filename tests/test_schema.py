"""The migrations on a real stack: applied once and recorded, profiles made by the auth trigger."""

from __future__ import annotations

import httpx
import psycopg

from localbase import migrate
from tests.conftest import Users
from tests.stackproc import StackProcess


def test_health_answers(stack: StackProcess) -> None:
    assert httpx.get(f"{stack.api_url}/health").json() == {"status": "ok"}


def test_migrations_recorded_and_idempotent(stack: StackProcess, db: psycopg.Connection) -> None:
    versions = [m.version for m in migrate.migrations()]
    recorded = [r[0] for r in db.execute("select version from supabase_migrations.schema_migrations order by 1")]
    assert recorded == versions
    assert migrate.apply_all(stack.db_url) == []


def test_profile_role_comes_from_app_metadata(users: Users, db: psycopg.Connection) -> None:
    rows = dict(db.execute("select id::text, role from public.profiles").fetchall())
    assert rows[users.admin.id] == "admin"
    assert rows[users.agent.id] == "agent"
    assert rows[users.customer.id] == "customer"


def test_user_metadata_cannot_grant_a_role(db: psycopg.Connection) -> None:
    row = db.execute(
        "insert into auth.users (id, email, raw_user_meta_data) values (gen_random_uuid(), 'x@example.com',"
        ' \'{"role": "admin"}\') returning id'
    ).fetchone()
    assert row is not None
    role = db.execute("select role from public.profiles where id = %s", (row[0],)).fetchone()
    assert role == ("customer",)
    db.execute("delete from auth.users where id = %s", (row[0],))
