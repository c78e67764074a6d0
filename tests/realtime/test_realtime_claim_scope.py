"""Attacks on the shared RLS check: sessions of one user share a verdict only where no policy can tell them apart.

The capture checks each batch once per role and values of the claim keys the table's policies can read
(localbase/realtime/claimscope.py proves which). These tests try to make two sessions of one user share a verdict they
must not: a restrictive staff policy on `aal` (the app's own two-step sign-in switch), a policy on `session_id`, and
policies that reach the claims through functions, views, other tables' policies, operators, settings and dynamic SQL.
A naive "one check per user" (the claims' `sub` alone) fails the two end-to-end tests and the proof's cases.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import AsyncConnection

from localbase.realtime import claimscope, rls
from localbase.realtime.capture import _scoped_identity
from tests.conftest import Users
from tests.realtime.support import RawSocket, new_ticket
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(60)

MESSAGES = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "messages"}]}
PROFILES = {"postgres_changes": [{"event": "UPDATE", "schema": "public", "table": "profiles"}]}


def _change(frame: dict[str, object]) -> bool:
    return frame["event"] == "postgres_changes"


async def _joined(stack: StackProcess, token: str, *specs: tuple[str, dict[str, object]]) -> RawSocket:
    sock = await RawSocket.open(stack)
    for topic, spec in specs:
        reply = await sock.join(topic, spec, token=token)
        assert reply["status"] == "ok", reply
        await sock.next(lambda f, topic=topic: f["event"] == "system" and f["topic"] == topic)
    return sock


async def _first_change(sock: RawSocket) -> dict[str, object]:
    frame = await sock.next(_change)
    data = frame["payload"]["data"]  # type: ignore[index]
    return {"table": data["table"], **data["record"]}  # type: ignore[index]


async def test_an_aal1_session_never_shares_the_verdict_of_the_same_agents_aal2_session(
    stack: StackProcess, users: Users
) -> None:
    """With two-step sign-in required of staff, an agent's aal2 session receives a message on its ticket and the same
    agent's aal1 session must not (staff_mfa reads `aal`). The aal2 session joins first, so a check shared per user
    would be asked with its claims and show the aal1 session the message too."""
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    strong = await _joined(stack, stack.mint(sub=users.agent.id, aal="aal2"), ("realtime:mfa-scope", MESSAGES))
    weak = await _joined(
        stack,
        stack.mint(sub=users.agent.id, aal="aal1"),
        ("realtime:mfa-scope", MESSAGES),
        ("realtime:mfa-scope-profile", PROFILES),
    )
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute("update public.app_settings set staff_require_mfa = true")
        try:
            conn.execute(
                "insert into public.messages (ticket_id, sender_id, content) values (%s, %s, 'for aal2 only')",
                (ticket, users.customer.id),
            )
            # committed after the message, on the agent's own profile (readable at aal1): the weak session's first
            # change must be this one, with nothing of the message before it
            conn.execute("update public.profiles set display_name = display_name where id = %s", (users.agent.id,))
            got = await _first_change(strong)
            assert got["table"] == "messages" and got["content"] == "for aal2 only"
            first = await _first_change(weak)
            assert first["table"] == "profiles", f"an aal1 session received {first}"
        finally:
            conn.execute("update public.app_settings set staff_require_mfa = false")
    await strong.close()
    await weak.close()


@pytest.fixture
async def session_table(stack: StackProcess) -> AsyncIterator[str]:
    """A published scratch table whose rows each belong to one session (`session_id` claim), not to a user."""
    schema = f"scope_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute(
            f"create schema {schema}; grant usage on schema {schema} to authenticated;"
            f" create table {schema}.notes (id bigserial primary key, session_id text not null, body text);"
            f" alter table {schema}.notes enable row level security;"
            f" create policy per_session on {schema}.notes for select to authenticated"
            f"   using (session_id = (select auth.jwt() ->> 'session_id'));"
            f" grant select on {schema}.notes to authenticated;"
            f" alter publication supabase_realtime add table {schema}.notes"
        )
        try:
            yield schema
        finally:
            conn.execute(f"drop schema {schema} cascade")


async def test_two_sessions_of_one_user_do_not_share_a_policy_on_session_id(
    stack: StackProcess, users: Users, session_table: str
) -> None:
    """Rows visible to one session only: each of two sessions of the same customer receives its own row and not the
    other's (both rows commit in one transaction, so they are checked in one batch)."""
    spec = {"postgres_changes": [{"event": "INSERT", "schema": session_table, "table": "notes"}]}
    sessions = [str(uuid.uuid4()), str(uuid.uuid4())]
    sockets = [
        await _joined(stack, stack.mint(sub=users.customer.id, session_id=sid), ("realtime:session-scope", spec))
        for sid in sessions
    ]
    with psycopg.connect(stack.db_url) as conn:  # one transaction: one batch
        for sid in sessions:
            conn.execute(f"insert into {session_table}.notes (session_id, body) values (%s, %s)", (sid, f"for {sid}"))
    for sock, sid in zip(sockets, sessions, strict=True):
        got = await _first_change(sock)
        assert got["body"] == f"for {sid}", f"session {sid} received {got}"
    # each socket's own row came first; the other's must not follow (a third row for each proves the "not")
    with psycopg.connect(stack.db_url) as conn:
        for sid in sessions:
            conn.execute(f"insert into {session_table}.notes (session_id, body) values (%s, 'again')", (sid,))
    for sock in sockets:
        assert (await _first_change(sock))["body"] == "again"
        await sock.close()


async def test_a_policy_changed_after_the_proof_is_checked_per_session_at_once(
    stack: StackProcess, users: Users, session_table: str
) -> None:
    """The capture keeps its proof until DDL moves the epoch. Here the table's policy first reads only `sub` (so two
    sessions of the customer share one check, and the proof is cached), then becomes per session: the very next
    batch must already be checked per session (the check finds the epoch moved and is asked again)."""
    sessions = [str(uuid.uuid4()), str(uuid.uuid4())]
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute(f"alter policy per_session on {session_table}.notes using (true)")
    spec = {"postgres_changes": [{"event": "INSERT", "schema": session_table, "table": "notes"}]}
    sockets = [
        await _joined(stack, stack.mint(sub=users.customer.id, session_id=sid), ("realtime:policy-change", spec))
        for sid in sessions
    ]
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        conn.execute(f"insert into {session_table}.notes (session_id, body) values ('nobody', 'shared')")
        for sock in sockets:
            assert (await _first_change(sock))["body"] == "shared"
        per_session = "session_id = (select auth.jwt() ->> 'session_id')"
        conn.execute(f"alter policy per_session on {session_table}.notes using ({per_session})")
        conn.execute(f"insert into {session_table}.notes (session_id, body) values (%s, 'first only')", (sessions[0],))
        conn.execute(f"insert into {session_table}.notes (session_id, body) values (%s, 'second only')", (sessions[1],))
    assert (await _first_change(sockets[0]))["body"] == "first only"
    assert (await _first_change(sockets[1]))["body"] == "second only"
    for sock in sockets:
        await sock.close()


def test_the_check_says_when_the_ddl_epoch_moved(stack: StackProcess) -> None:
    """The generated check reads the epoch after evaluating: a proof's epoch that is not the current one gets the
    extra `(-1, 0)` row, the current one does not."""
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        oid = conn.execute("select 'public.messages'::regclass::oid").fetchone()[0]  # type: ignore[index]
        fn = f"{rls.SCHEMA}.{rls.check_function_name(oid)}"
        conn.execute(rls.check_function(oid, "public", "messages", [("id", "uuid")]).encode())
        epoch = conn.execute(rls.EPOCH_SQL).fetchone()[0]  # type: ignore[index]
        query = f"select g, k from {fn}('{{}}'::int8[], '[]'::jsonb, '[]'::jsonb, false, %s)"
        assert conn.execute(query, (epoch,)).fetchall() == []
        assert conn.execute(query, (epoch - 1,)).fetchall() == [(rls.STALE, 0)]
        conn.execute("create temporary table epoch_probe (); drop table epoch_probe")  # any DDL moves it
        assert conn.execute(query, (epoch,)).fetchall() == [(rls.STALE, 0)]


# the proof itself, over the real catalog with scratch objects in a transaction that is rolled back ------------------


async def _scope(stack: StackProcess, ddl: str, table: str = "t", before: str = "") -> frozenset[str] | None:
    """The claim keys `claimscope` proves for `scratch.<table>` after `ddl` (in a rolled-back transaction); with
    `before`, the same prover first proves `scratch.<before>` (what it learnt there must not change the answer)."""
    async with await AsyncConnection.connect(stack.db_url) as conn:
        await conn.execute(
            "create schema scratch; create table scratch.t (id int primary key, owner uuid, k text);"
            " create table scratch.other (id int primary key, owner uuid, k text);"
            " alter table scratch.t enable row level security; alter table scratch.other enable row level security;"
        )
        await conn.execute(ddl)
        oids = {}
        for name in {table, before or table}:
            row = await (await conn.execute(f"select 'scratch.{name}'::regclass::oid::int8")).fetchone()
            assert row is not None
            oids[name] = int(row[0])
        catalog = await claimscope.load(conn)
        await conn.rollback()
    prover = claimscope.Prover(catalog)
    if before:
        prover.table(oids[before])
    return prover.table(oids[table])


async def test_the_apps_tables_read_only_sub_and_aal(stack: StackProcess) -> None:
    async with await AsyncConnection.connect(stack.db_url, autocommit=True) as conn:
        catalog = await claimscope.load(conn)
        oids = await (
            await conn.execute("select 'public.messages'::regclass::oid::int8, 'public.tickets'::regclass::oid::int8")
        ).fetchone()
    assert oids is not None
    prover = claimscope.Prover(catalog)
    assert prover.table(int(oids[0])) == {"sub", "aal"}
    assert prover.table(int(oids[1])) == {"sub", "aal"}


@pytest.mark.parametrize(
    ("ddl", "expected"),
    [
        pytest.param("create policy p on scratch.t for select using (owner = (select auth.uid()))", {"sub"}, id="uid"),
        pytest.param(
            "create policy p on scratch.t using ((select auth.jwt() ->> 'session_id') = k)",
            {"session_id"},
            id="jwt-key",
        ),
        pytest.param("create policy p on scratch.t for select using (auth.jwt() is not null)", None, id="jwt-whole"),
        pytest.param(
            "create policy p on scratch.t for select using (auth.jwt()::text like '%x%')", None, id="jwt-as-text"
        ),
        pytest.param(
            "create policy p on scratch.t for select using (current_setting('REQUEST.JWT.CLAIMS', true) <> '')",
            None,
            id="setting-case",
        ),
        pytest.param(
            "create policy p on scratch.t for select using (current_setting(k, true) is null)", None, id="setting-name"
        ),
        pytest.param(
            "create policy p on scratch.t for select using (exists (select 1 from pg_settings s where s.setting = k))",
            None,
            id="pg_settings",
        ),
        pytest.param(
            "create policy p on scratch.t for select using (jsonb_extract_path_text(auth.jwt(), 'session_id') = k)",
            None,
            id="jwt-as-argument",
        ),
        pytest.param(
            "create policy p on scratch.t for select using ((auth.jwt() #>> '{amr,0,method}') = k)", None, id="path"
        ),
        pytest.param(
            "create policy p on scratch.t for select using (query_to_xml('select 1', true, true, '') is not null)",
            None,
            id="dynamic-sql",
        ),
        pytest.param(
            "create function scratch.amr() returns jsonb language sql stable as"
            " $$ select nullif(current_setting('request.jwt.claims', true), '')::jsonb -> 'amr' $$;"
            " create policy p on scratch.t for select using (scratch.amr() is not null)",
            {"amr"},
            id="sql-function-key",
        ),
        pytest.param(
            "create function scratch.sid() returns text language plpgsql stable as"
            " $$ begin return 'x'; end $$;"
            " create policy p on scratch.t for select using (k = scratch.sid())",
            None,
            id="plpgsql",
        ),
        pytest.param(
            "create function scratch.claims() returns jsonb language sql stable as"
            " $$ select current_setting('request.jwt.claims', true)::jsonb $$;"
            " create function scratch.get(c jsonb) returns text language sql stable as $$ select c ->> 'iat' $$;"
            " create policy p on scratch.t for select using (scratch.get(scratch.claims()) = k)",
            None,
            id="claims-passed-on",
        ),
        pytest.param(
            "create view scratch.v as select (auth.jwt() ->> 'iat') as iat;"
            " create policy p on scratch.t for select using (exists (select 1 from scratch.v where v.iat = k))",
            {"iat"},
            id="view",
        ),
        pytest.param(
            "create policy o on scratch.other for select using (k = (select auth.jwt() ->> 'session_id'));"
            " create policy p on scratch.t for select using (exists (select 1 from scratch.other o where o.id = id))",
            {"session_id"},
            id="other-tables-policy",
        ),
        pytest.param(
            "create function scratch.eq(text, text) returns boolean language sql stable as"
            " $$ select $1 = $2 and auth.jwt() ->> 'aal' = 'aal2' $$;"
            " create operator scratch.=== (function = scratch.eq, leftarg = text, rightarg = text);"
            " create policy p on scratch.t for select using (owner = (select auth.uid()))",
            {"sub", "aal"},
            id="user-operator",
        ),
        pytest.param(
            "create function scratch.sk() returns text language sql stable as"
            " $$ select k from scratch.t for update $$;"
            " create policy p on scratch.other for select using (k = scratch.sk())",
            None,
            id="row-lock",
        ),
    ],
)
async def test_the_proof_counts_every_claim_a_policy_can_read(
    stack: StackProcess, ddl: str, expected: set[str] | None
) -> None:
    table = "other" if "on scratch.other for select using (k = scratch.sk())" in ddl else "t"
    assert await _scope(stack, ddl, table) == (None if expected is None else frozenset(expected))


def test_identity_is_the_values_of_the_proven_keys_and_keeps_a_missing_key_apart_from_null() -> None:
    keys = frozenset({"sub", "aal"})
    one = _scoped_identity(json.dumps({"sub": "u", "aal": "aal1", "session_id": "a"}, sort_keys=True), keys)
    assert one == _scoped_identity(json.dumps({"sub": "u", "aal": "aal1", "session_id": "b", "iat": 1}), keys)
    assert one != _scoped_identity(json.dumps({"sub": "u", "aal": "aal2", "session_id": "a"}), keys)
    assert one != _scoped_identity(json.dumps({"sub": "v", "aal": "aal1", "session_id": "a"}), keys)
    assert _scoped_identity('{"sub":"u"}', keys) != _scoped_identity('{"sub":"u","aal":null}', keys)
    assert _scoped_identity('{"sub":"u","aal":1}', keys) != _scoped_identity('{"sub":"u","aal":"1"}', keys)


async def test_a_function_returning_the_claims_stays_one_after_a_key_read_of_it(stack: StackProcess) -> None:
    """`auth.jwt() ->> 'aal'` proven first (another table's policy) must not make a later whole `auth.jwt()` look like
    an ordinary function with nothing to read (the first version of the proof had that hole)."""
    ddl = (
        "create policy o on scratch.other for select using ((select auth.jwt() ->> 'aal') = k);"
        " create policy p on scratch.t for select using (auth.jwt() is not null)"
    )
    assert await _scope(stack, ddl, "other") == {"aal"}
    assert await _scope(stack, ddl, "t", before="other") is None
    both = "create policy p on scratch.t for select using ((auth.jwt() ->> 'aal') = k and auth.jwt() is not null)"
    assert await _scope(stack, both) is None
