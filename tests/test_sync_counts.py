"""``rpc sync_counts`` (migration 20261205000500): the initial sync's per-table row counts in one request, through
the official `supabase` client on the real stack, as an attacker would try it. Each answer is the one
``sync_count``/``sync_count_scoped`` gives alone, under the caller's RLS (a customer counts only their own rows,
never another customer's nor an internal note); anon may not call it; a malformed question is refused (22023) before
any count runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client

from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket

TABLES = ("profiles", "tickets", "messages", "attachments", "ticket_reads")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def _as(stack: StackProcess, http: httpx.Client, user_id: str | None) -> Client:
    client = create_client(stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False, httpx_client=http))
    if user_id is not None:
        client.postgrest.auth(stack.mint(sub=user_id))
    return client


def _asks(since: str | None = None) -> list[dict[str, object]]:
    return [{"table": t, "after_xid": 0, "after_id": 0, "since": since} for t in TABLES]


def test_one_request_answers_as_each_count_alone_under_rls(stack: StackProcess, http: httpx.Client) -> None:
    customer, other, agent = (create_user(stack.db_url, r) for r in ("customer", "customer", "agent"))
    seed_ticket(stack.db_url, customer, agent, messages=[(customer, "mine"), (agent, "a reply")])
    seed_ticket(stack.db_url, other, agent, messages=[(other, "not yours"), (agent, "nor this")])
    for user in (customer, agent):
        client = _as(stack, http, user.id)
        together = client.rpc("sync_counts", {"asks": _asks()}).execute().data
        alone = [
            client.rpc("sync_count", {"table_name": t, "after_xid": 0, "after_id": 0}).execute().data for t in TABLES
        ]
        assert together == alone, user.role
        scoped = client.rpc("sync_counts", {"asks": _asks("1970-01-01T00:00:00Z")[1:4]}).execute().data
        scoped_alone = [
            client.rpc("sync_count_scoped", {"table_name": t, "since": "1970-01-01T00:00:00Z"}).execute().data
            for t in TABLES[1:4]
        ]
        assert scoped == scoped_alone, user.role
    mine = _as(stack, http, customer.id).rpc("sync_counts", {"asks": _asks()}).execute().data
    assert mine[1:3] == [1, 2]  # their ticket and its two messages; the other customer's are not counted


def test_anon_and_malformed_questions_are_refused(stack: StackProcess, http: httpx.Client) -> None:
    with pytest.raises(APIError) as anon:
        _as(stack, http, None).rpc("sync_counts", {"asks": _asks()}).execute()
    assert anon.value.code == "42501"
    customer = create_user(stack.db_url, "customer")
    client = _as(stack, http, customer.id)
    for bad in (
        {"table": "auth.users"},  # not an array
        [{"table": "auth.users", "after_xid": 0, "after_id": 0}],  # not a synced table
        [{"table": "messages", "after_xid": 0, "after_id": 0, "since": "1970-01-01", "x": 1}] * 65,  # too many
        ["messages"],  # not an object
        [{"table": "auth.users", "since": "1970-01-01T00:00:00Z"}],  # not a table of the partial sync
    ):
        with pytest.raises(APIError) as refused:
            client.rpc("sync_counts", {"asks": bad}).execute()
        assert refused.value.code == "22023", bad
