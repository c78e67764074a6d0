"""The realtime RLS check's two statement shapes give the same answers, identity by identity.

localbase/realtime/rls.py asks one statement per subscriber identity; a batch of one changed row asked by every
identity (the usual case) takes a plain `exists` lookup, any other batch the key-mapping statement. Here the
generated function itself is called (under a name of its own, so the capture's copy is untouched) with identities
of every kind for a public message and an internal note, once as one-row batches and once as one two-row batch,
and must answer exactly: the ticket's customer and staff who may read the ticket see the message, the note only
staff, nobody else anything, and an identity asking about no row gets nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from localbase.realtime import rls
from tests.conftest import Users, create_user
from tests.realtime.support import new_ticket, post
from tests.stackproc import StackProcess, session_claims


@pytest.fixture
def check(stack: StackProcess) -> Iterator[tuple[psycopg.Connection, str]]:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        oid = conn.execute("select 'public.messages'::regclass::oid").fetchone()[0]  # type: ignore[index]
        name = rls.check_function_name(oid)
        own = f"{name}_test_{uuid.uuid4().hex[:8]}"
        conn.execute(rls.check_function(oid, "public", "messages", [("id", "uuid")]).replace(name, own).encode())
        try:
            yield conn, f"{rls.SCHEMA}.{own}"
        finally:
            conn.execute(f"drop function {rls.SCHEMA}.{own}(bigint[], jsonb, jsonb, boolean)")


def _ask(
    conn: psycopg.Connection, fn: str, keys: list[str], groups: list[rls.Group], safe: bool = False
) -> set[tuple[int, int]]:
    args = ([], json.dumps([{"id": key} for key in keys]), "[" + ",".join(g.json() for g in groups) + "]", safe)
    rows = conn.execute(f"select g, k from {fn}(%s::int8[], %s::jsonb, %s::jsonb, %s)", args).fetchall()
    return {(int(g), int(k)) for g, k in rows}


def test_one_row_and_many_row_batches_answer_alike(
    stack: StackProcess, users: Users, check: tuple[psycopg.Connection, str]
) -> None:
    conn, fn = check
    ticket = new_ticket(stack.db_url, users.customer, users.agent)  # the customer's, assigned to agent
    message = post(stack.db_url, users.customer, ticket, "visible to the ticket's people")
    note = post(stack.db_url, users.agent, ticket, "staff only", internal=True)
    admin = create_user(stack.db_url, "admin")
    people = [users.customer, users.customer2, users.agent, users.agent2, admin]
    # who sees the message (key 0) and the note (key 1): the customer only the message; agent2 neither (the
    # ticket is assigned to agent); customer2 nothing; the admin both
    expected = {0: {0}, 1: set(), 2: {0, 1}, 3: set(), 4: {0, 1}}

    def groups(rows: list[int] | None) -> list[rls.Group]:
        out = []
        for g, user in enumerate(people):
            claims = json.dumps(session_claims(stack.db_url, user.id))
            out.append(rls.Group(g, "authenticated", claims, rows))
        return out

    # one-row batches: every identity asks about all keys (None: the fast path) or names the key
    for k, key in enumerate((message, note)):
        want = {(g, 0) for g, seen in expected.items() if k in seen}
        assert _ask(conn, fn, [key], groups(None)) == want
        assert _ask(conn, fn, [key], groups([0])) == want
    # one two-row batch: the mapping statement, all keys or each key named
    both = {(g, k) for g, seen in expected.items() for k in seen}
    assert _ask(conn, fn, [message, note], groups(None)) == both
    assert _ask(conn, fn, [message, note], groups([0, 1])) == both
    assert _ask(conn, fn, [message, note], groups([1])) == {(g, k) for g, k in both if k == 1}
    # a role without a grant on messages fails its check, which hides (safe mode, as the checker retries), beside
    # an identity that does see the row; and an identity asking about no row gets nothing
    anon = rls.Group(0, "anon", json.dumps({"role": "anon"}))
    customer = groups(None)[0]
    assert _ask(conn, fn, [message], [anon, rls.Group(1, customer.role, customer.claims)], safe=True) == {(1, 0)}
    assert _ask(conn, fn, [message], groups([])) == set()


def test_the_staff_mfa_switch_still_decides_per_identity(
    stack: StackProcess, users: Users, check: tuple[psycopg.Connection, str]
) -> None:
    """staff_mfa reads the project's switch before calling mfa_satisfied() (migration 20261203000310): while it is off
    an agent's password session (aal1) is asked like any other; once on, only its aal2 session sees the message, in
    the same batch, and the customer is unaffected."""
    conn, fn = check
    ticket = new_ticket(stack.db_url, users.customer, users.agent)
    message = post(stack.db_url, users.customer, ticket, "does the agent need two steps?")

    def group(g: int, sub: str, aal: str) -> rls.Group:
        claims = session_claims(stack.db_url, sub, aal=aal)
        return rls.Group(g, "authenticated", json.dumps(claims))

    asked = [group(0, users.agent.id, "aal1"), group(1, users.agent.id, "aal2"), group(2, users.customer.id, "aal1")]
    assert _ask(conn, fn, [message], asked) == {(0, 0), (1, 0), (2, 0)}
    conn.execute("update public.app_settings set staff_require_mfa = true")
    try:
        assert _ask(conn, fn, [message], asked) == {(1, 0), (2, 0)}
        assert _ask(conn, fn, [message, message], asked) == {(1, 0), (1, 1), (2, 0), (2, 1)}  # the mapping shape too
    finally:
        conn.execute("update public.app_settings set staff_require_mfa = false")
    assert _ask(conn, fn, [message], asked) == {(0, 0), (1, 0), (2, 0)}


def test_an_identity_whose_session_ended_gets_no_staff_rows(
    stack: StackProcess, users: Users, check: tuple[psycopg.Connection, str]
) -> None:
    """Realtime asks with the subscriber's claims (migration 20261213000100): an agent whose session ended (signed
    out, ended by an acceptance) no longer gets the unassigned ticket's message nor its internal note, in the same
    batch as the agent's live session, which gets both; both shapes of the check answer alike."""
    conn, fn = check
    ticket = new_ticket(stack.db_url, users.customer, None)  # unassigned: every agent reads it
    message = post(stack.db_url, users.customer, ticket, "visible to staff")
    note = post(stack.db_url, users.agent, ticket, "staff only", internal=True)
    live, ended = session_claims(stack.db_url, users.agent2.id), session_claims(stack.db_url, users.agent2.id)
    conn.execute("delete from auth.sessions where id = %s", (ended["session_id"],))  # signed out
    asked = [rls.Group(0, "authenticated", json.dumps(live)), rls.Group(1, "authenticated", json.dumps(ended))]
    assert _ask(conn, fn, [message], asked) == {(0, 0)}
    assert _ask(conn, fn, [note], asked) == {(0, 0)}
    assert _ask(conn, fn, [message, note], asked) == {(0, 0), (0, 1)}
