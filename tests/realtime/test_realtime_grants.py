"""postgres_changes for a role without SELECT on the table (issue 9 item 3): the subscriber gets the error
Supabase's Realtime gives (walrus `realtime.apply_rls`: "Error 401: Unauthorized", no columns, no
values), never the row; a filter on a column it may not read is refused at join ("invalid column for
filter"), and a role with the grant still gets the row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import Users
from tests.realtime.support import RawSocket
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ungranted(db: psycopg.Connection) -> Iterator[str]:
    """A throwaway table in the publication that anon and authenticated may not read (its key column
    not even by a column grant)."""
    name = f"nogrant_{uuid.uuid4().hex[:8]}"
    db.execute(f"create table public.{name} (id bigint generated always as identity primary key, note text)")
    db.execute(f"revoke all on public.{name} from anon, authenticated")
    db.execute(f"grant select (note) on public.{name} to authenticated")
    db.execute(f"grant all on public.{name} to service_role")
    db.execute(f"alter publication supabase_realtime add table public.{name}")
    yield name
    db.execute(f"alter publication supabase_realtime drop table public.{name}")
    db.execute(f"drop table public.{name}")


async def subscribe(stack: StackProcess, table: str, token: str, **binding: str) -> tuple[RawSocket, dict[str, object]]:
    sock = await RawSocket.open(stack)
    reply = await sock.join(
        f"realtime:{table}-{uuid.uuid4().hex[:6]}",
        {"postgres_changes": [{"event": "*", "schema": "public", "table": table, **binding}]},
        token=token,
    )
    if reply["status"] == "ok":
        system = await sock.next(lambda f: f["event"] == "system")
        assert system["payload"]["message"] == "Subscribed to PostgreSQL"
    return sock, reply


async def test_a_role_without_select_gets_supabases_error_not_rows(
    stack: StackProcess, users: Users, ungranted: str, db: psycopg.Connection
) -> None:
    user, _ = await subscribe(stack, ungranted, stack.mint(users.customer.id))
    anon, _ = await subscribe(stack, ungranted, stack.anon_key)
    service, _ = await subscribe(stack, ungranted, stack.service_role_key)
    try:
        db.execute(f"insert into public.{ungranted} (note) values ('secret')")
        db.execute(f"update public.{ungranted} set note = 'still secret'")
        for sock in (user, anon):
            for kind in ("INSERT", "UPDATE"):
                frame = await sock.next(
                    lambda f, k=kind: (
                        f["event"] == "postgres_changes"  # type: ignore[misc]
                        and f["payload"]["data"]["type"] == k
                    )
                )
                data = frame["payload"]["data"]
                assert data["errors"] == ["Error 401: Unauthorized"]
                assert data["columns"] == [] and data["record"] == {} and data["commit_timestamp"] is None
                assert data.get("old_record", {}) == {} and (kind == "INSERT") == ("old_record" not in data)
                assert "secret" not in str(frame)
        got = await service.next(
            lambda f: f["event"] == "postgres_changes" and f["payload"]["data"]["type"] == "UPDATE"
        )
        assert got["payload"]["data"]["record"]["note"] == "still secret" and got["payload"]["data"]["errors"] is None
    finally:
        for sock in (user, anon, service):
            await sock.close()


async def test_a_filter_on_a_column_the_role_may_not_read_is_refused(
    stack: StackProcess, users: Users, ungranted: str
) -> None:
    sock, reply = await subscribe(stack, ungranted, stack.mint(users.customer.id), filter="id=eq.1")
    try:
        assert reply["status"] == "error"
        assert reply["response"]["reason"].startswith("invalid column for filter id")  # type: ignore[index]
    finally:
        await sock.close()
    sock, reply = await subscribe(stack, ungranted, stack.mint(users.customer.id), filter="note=eq.x")
    await sock.close()
    assert reply["status"] == "ok"  # the column it was granted
