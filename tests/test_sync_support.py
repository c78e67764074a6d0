"""Shared helpers for the sync tests (no tests here): arranging server data as the superuser,
opening signed-in engines on temp dirs, waiting for conditions, and a fault proxy fixture.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg

from sync import RemoteConfig, SyncEngine, events
from tests.conftest import User
from tests.faultproxy import FaultProxy
from tests.helpers import wait_for

__all__ = ["EngineFactory", "open_engines", "running_proxy", "seed_ticket", "server_messages", "sql", "wait_for"]
from tests.stackproc import StackProcess


def seed_ticket(
    db_url: str,
    customer: User | str,
    assignee: User | str | None = None,
    subject: str = "Help",
    *,
    status: str = "open",
    messages: list[tuple[User | str, str]] | None = None,
) -> str:
    """A ticket (and its messages) written as the superuser, through the real triggers."""

    def uid(u: User | str | None) -> str | None:
        return u.id if isinstance(u, User) else u

    with psycopg.connect(db_url, autocommit=True) as conn:
        ticket_id = str(
            conn.execute(
                "insert into public.tickets (customer_id, assignee_id, subject, status) values (%s, %s, %s, %s)"
                " returning id",
                (uid(customer), uid(assignee), subject, status),
            ).fetchone()[0]
        )  # type: ignore[index]
        for sender, content in messages or []:
            conn.execute(
                "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, %s)",
                (ticket_id, uid(sender), content),
            )
    return ticket_id


def sql(db_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def snooze_on_server(
    db_url: str, ticket_id: str, until: str | None = "now() + interval '1 day'", **ticket: str
) -> None:
    """Snooze a ticket as the superuser: pending (with the ticket's other ``ticket`` columns set to the values given),
    then its staff-only ``ticket_snoozes`` row until the SQL expression ``until`` (None: until the customer replies),
    as the app's two steps do (migration 20261216000100)."""
    sets = "".join(f", {column} = %s" for column in ticket)
    with psycopg.connect(db_url, autocommit=True) as conn, conn.transaction():
        conn.execute(f"update tickets set status = 'pending'{sets} where id = %s", (*ticket.values(), ticket_id))
        conn.execute(
            f"insert into ticket_snoozes (ticket_id, snoozed_until) values (%s, {until or 'null'})"
            " on conflict (ticket_id) do update set snoozed_until = excluded.snoozed_until",
            (ticket_id,),
        )


def server_snooze(db_url: str, ticket_id: str, compare: str = "") -> tuple[Any, ...]:
    """The ticket's status and its snooze on the server (the time, or ``snoozed_until <compare>`` when given; None:
    no row or no time)."""
    rows = sql(
        db_url,
        f"select t.status, s.snoozed_until {compare} from tickets t left join ticket_snoozes s on s.ticket_id = t.id"
        " where t.id = %s",
        ticket_id,
    )
    return rows[0]


class EngineFactory:
    """Opens signed-in engines, each with its own data dir; closes them all at teardown."""

    def __init__(self, stack: StackProcess, root: Path) -> None:
        self.stack = stack
        self.root = root
        self.engines: list[SyncEngine] = []
        self.events: dict[int, list[events.Event]] = {}

    async def open(
        self, user: User | None = None, url: str | None = None, data_dir: Path | None = None, timeout: float = 5.0
    ) -> SyncEngine:
        data_dir = data_dir or self.root / f"engine-{len(self.engines)}-{uuid.uuid4().hex[:6]}"
        engine = await SyncEngine.open(
            RemoteConfig(url or self.stack.api_url, self.stack.anon_key), data_dir, timeout=timeout
        )
        log: list[events.Event] = []
        self.events[id(engine)] = log
        engine.subscribe(log.append)
        self.engines.append(engine)
        if user is not None:
            await engine.sign_in(user.email, user.password)
        return engine

    def log(self, engine: SyncEngine) -> list[events.Event]:
        return self.events[id(engine)]

    async def close(self) -> None:
        for engine in self.engines:
            await engine.close()


@contextlib.asynccontextmanager
async def open_engines(stack: StackProcess, root: Path) -> AsyncIterator[EngineFactory]:
    """Test modules wrap this in their own ``engines`` fixture."""
    factory = EngineFactory(stack, root)
    try:
        yield factory
    finally:
        await factory.close()


@contextlib.contextmanager
def running_proxy(stack: StackProcess) -> Iterator[FaultProxy]:
    """A fault proxy in front of ``stack``; test modules wrap this in their own ``proxy`` fixture."""
    url = urlparse(stack.api_url)
    p = FaultProxy(url.hostname or "127.0.0.1", url.port or 80).start()
    try:
        yield p
    finally:
        p.stop()


def server_messages(db_url: str, ids: list[str]) -> list[tuple[str, str]]:
    return [
        (str(r[0]), str(r[1])) for r in sql(db_url, "select id, content from public.messages where id = any(%s)", ids)
    ]


AsyncFn = Callable[[], Awaitable[Any]]
