"""Shared fixtures: one real localbase per test session, and users of every role on it.

`stack` is a child process running the real server on embedded PostgreSQL in a temp dir; `users`
creates an admin, two agents and two customers directly in `auth.users` (the signup trigger makes
their profiles, `app_metadata.role` their roles) so tests of REST and RLS do not depend on the
auth endpoints (`stack.mint()` signs access tokens for them with the stack's own secret); `db` is
a superuser connection; `proxy` puts a fault-injecting TCP proxy in front of the stack; `engines`
opens sync engines with their own caches.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import bcrypt
import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.stackproc import StackProcess

if TYPE_CHECKING:
    from tests.faultproxy import FaultProxy
    from tests.test_sync_support import EngineFactory

PASSWORD = "correct-horse-battery"
_PASSWORD_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    root: Path = tmp_path_factory.mktemp("localbase")
    proc = StackProcess(root / "data")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@dataclass(frozen=True)
class User:
    id: str
    email: str
    role: str
    name: str
    password: str = PASSWORD


def create_user(db_url: str, role: str, name: str | None = None) -> User:
    """Insert a confirmed auth user as GoTrue would store it; the trigger creates the profile."""
    uid = str(uuid.uuid4())
    tag = uid[:8]
    email = f"{role}-{tag}@test.supportchat.local"
    name = name or f"{role.title()} {tag}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,"
            " raw_app_meta_data, raw_user_meta_data)"
            " values ('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated', %s, %s, now(),"
            " %s, %s)",
            (
                uid,
                email,
                _PASSWORD_HASH,
                Jsonb({"provider": "email", "providers": ["email"], "role": role}),
                Jsonb({"display_name": name}),
            ),
        )
        conn.execute(
            "insert into auth.identities (provider_id, user_id, identity_data, provider) values (%s, %s, %s, 'email')",
            (uid, uid, Jsonb({"sub": uid, "email": email, "email_verified": True})),
        )
    return User(uid, email, role, name)


@dataclass(frozen=True)
class Users:
    admin: User
    agent: User
    agent2: User
    customer: User
    customer2: User


@pytest.fixture(scope="session")
def users(stack: StackProcess) -> Users:
    return Users(
        admin=create_user(stack.db_url, "admin"),
        agent=create_user(stack.db_url, "agent"),
        agent2=create_user(stack.db_url, "agent"),
        customer=create_user(stack.db_url, "customer"),
        customer2=create_user(stack.db_url, "customer"),
    )


@pytest.fixture
def db(stack: StackProcess) -> Iterator[psycopg.Connection]:
    """A superuser connection to the stack's database (autocommit), for arranging and checking."""
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def proxy(stack: StackProcess) -> Iterator[FaultProxy]:
    """A fault-injecting TCP proxy in front of the session stack (drop, stall, reset, pass)."""
    from tests.test_sync_support import running_proxy  # it imports this module's users

    with running_proxy(stack) as p:
        yield p


@pytest.fixture
async def engines(stack: StackProcess, tmp_path: Path) -> AsyncIterator[EngineFactory]:
    """Opens sync engines for users of the session stack, each with its own cache; closes them after the test."""
    from tests.test_sync_support import open_engines

    async with open_engines(stack, tmp_path) as factory:
        yield factory
