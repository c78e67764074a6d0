"""The embedded PostgreSQL asks every role for a password: it listens on 127.0.0.1, where any local
user could otherwise connect as the superuser (regression: the cluster was created with `trust`).
"""

from __future__ import annotations

import stat
from urllib.parse import urlparse

import psycopg
import pytest

from tests.stackproc import StackProcess


@pytest.mark.parametrize(
    "role", ["supabase_admin", "postgres", "authenticator", "supabase_auth_admin", "supabase_realtime_admin", "anon"]
)
def test_no_role_logs_in_without_the_password(stack: StackProcess, role: str) -> None:
    port = urlparse(stack.db_url).port
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"postgresql://{role}@127.0.0.1:{port}/postgres?connect_timeout=5", password="")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"postgresql://{role}:wrong@127.0.0.1:{port}/postgres?connect_timeout=5")


def test_the_printed_db_url_works_and_its_password_is_private(stack: StackProcess) -> None:
    # the printed db_url is the project's `postgres` role, not a superuser, as on Supabase
    with psycopg.connect(stack.postgres_url, connect_timeout=5) as conn:
        assert conn.execute("select current_user, rolsuper from pg_roles where rolname = current_user").fetchone() == (
            "postgres",
            False,
        )
    with psycopg.connect(stack.db_url, connect_timeout=5) as conn:
        assert conn.execute("select current_user, rolsuper from pg_roles where rolname = current_user").fetchone() == (
            "supabase_admin",
            True,
        )
    assert stat.S_IMODE((stack.data_dir / "db_password").stat().st_mode) == 0o600
