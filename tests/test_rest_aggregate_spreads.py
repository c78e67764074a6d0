"""Aggregates inside spreads, as PostgREST 12/13 serves them with `db-aggregates-enabled` (issue 17), through
supabase-py and supabase-js (tests/js/aggregate_spreads.mjs) on the pgx_* fixture: the columns of a to-one
spread group the parent's aggregates; an aggregate inside a to-one spread is hoisted to the root or to the
enclosing JSON embed (also through nested spreads; `count()` counts the rows that have a match); inside a
to-many spread it is PGRST127; with the setting off it is PGRST123 as everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client

from tests import postgrest_fixture
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_js_smoke import JS_DIR, node_ready
from tests.test_rest_clients import ClientFactory, clients_fixture

uses_clients = clients_fixture


def _set_aggregates(stack: StackProcess, sb: Client, enabled: bool) -> None:
    """As Supabase's docs say to switch them, then wait (bounded) for `NOTIFY pgrst` to reload the cache."""
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        if enabled:
            conn.execute("alter role authenticator set pgrst.db_aggregates_enabled = 'true'")
        else:
            conn.execute("alter role authenticator reset pgrst.db_aggregates_enabled")
        conn.execute("notify pgrst, 'reload config'")
    deadline = time.monotonic() + 20
    while True:
        try:
            sb.table("pgx_sales").select("amount.sum()").execute()
            served = True
        except APIError:
            served = False
        if served == enabled:
            return
        assert time.monotonic() < deadline, "NOTIFY pgrst did not reload the schema cache"
        time.sleep(0.05)  # between polls of the condition


@pytest.fixture(scope="module")
def sb(clients: ClientFactory, stack: StackProcess, users: Users) -> Iterator[Client]:
    postgrest_fixture.create(stack.db_url)
    client = clients(stack.mint(sub=users.agent.id))
    _set_aggregates(stack, client, True)
    try:
        yield client
    finally:
        _set_aggregates(stack, client, False)
        postgrest_fixture.drop(stack.db_url)


def test_spread_columns_group_the_parents_aggregates(sb: Client) -> None:
    rows = (
        sb.table("pgx_films")
        .select("latest:year.max(),films:count(),...pgx_directors(director:name)")
        .order("pgx_directors(name)")
        .execute()
        .data
    )
    assert rows == [
        {"latest": 1962, "films": 1, "director": "Agnes"},
        {"latest": 1994, "films": 2, "director": "Quentin"},
    ]


def test_aggregates_inside_a_to_one_spread_are_hoisted_to_the_root(sb: Client) -> None:
    rows = sb.table("pgx_specs").select("...pgx_films(first:year.min(),last:year.max(),year.sum())").execute().data
    assert rows == [{"first": 1992, "last": 1994, "sum": 3986}]
    # count() counts the parent rows the spread found a row for: Cleo has no specs
    assert sb.table("pgx_films").select("...pgx_specs(count())").execute().data == [{"count": 2}]


def test_hoisting_goes_through_nested_to_one_spreads(sb: Client) -> None:
    rows = (
        sb.table("pgx_roles")
        .select("...pgx_films(...pgx_directors(director:name),roles:count(),year.max())")
        .execute()
        .data
    )
    assert rows == [{"director": "Quentin", "roles": 4, "max": 1994}]


def test_aggregates_in_a_spread_inside_a_json_embed_group_within_that_embed(sb: Client) -> None:
    rows = sb.table("pgx_directors").select("name,pgx_films(count(),...pgx_specs(camera))").order("id").execute().data
    by_director = {r["name"]: sorted(r["pgx_films"], key=lambda f: str(f["camera"])) for r in rows}
    assert by_director == {
        "Quentin": [{"count": 1, "camera": "Arriflex"}, {"count": 1, "camera": "Panavision"}],
        "Agnes": [{"count": 1, "camera": None}],
    }


def test_aggregates_in_a_to_many_spread_are_not_implemented(sb: Client) -> None:
    with pytest.raises(APIError) as refused:
        sb.table("pgx_directors").select("name,...pgx_films(year.max())").execute()
    assert (refused.value.code, refused.value.message) == ("PGRST127", "Feature not implemented")
    assert refused.value.details == "Aggregates are not implemented for one-to-many or many-to-many spreads."


def test_plain_spreads_are_unchanged(sb: Client) -> None:
    rows = (
        sb.table("pgx_films")
        .select("title,...pgx_directors(director:name),...pgx_specs(camera)")
        .order("id")
        .execute()
        .data
    )
    assert rows == [
        {"title": "Pulp Fiction", "director": "Quentin", "camera": "Arriflex"},
        {"title": "Reservoir Dogs", "director": "Quentin", "camera": "Panavision"},
        {"title": "Cleo", "director": "Agnes", "camera": None},
    ]


def test_with_the_setting_off_spread_aggregates_are_refused(sb: Client, stack: StackProcess) -> None:
    _set_aggregates(stack, sb, False)
    try:
        for select in ("...pgx_films(year.max())", "camera,...pgx_films(count())"):
            with pytest.raises(APIError) as refused:
                sb.table("pgx_specs").select(select).execute()
            assert refused.value.code == "PGRST123"
        with pytest.raises(APIError) as to_many:
            sb.table("pgx_directors").select("...pgx_films(year.max())").execute()
        assert to_many.value.code == "PGRST123"
    finally:
        _set_aggregates(stack, sb, True)


@pytest.mark.node
def test_supabase_js_sees_the_same(sb: Client, stack: StackProcess, users: Users) -> None:
    env = {
        **os.environ,
        "SUPABASE_URL": stack.api_url,
        "SUPABASE_ANON_KEY": stack.anon_key,
        "SUPABASE_TOKEN": stack.mint(sub=users.agent.id),
    }
    done = subprocess.run(
        [node_ready(), "aggregate_spreads.mjs"],
        check=False,
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["grouped"] == [{"latest": 1962, "director": "Agnes"}, {"latest": 1994, "director": "Quentin"}]
    assert seen["hoisted"] == [{"first": 1992, "last": 1994}]
    assert seen["counted"] == [{"count": 2}]
    assert seen["nested"] == [{"director": "Quentin", "roles": 4}]
    assert seen["toMany"] == {"status": 400, "code": "PGRST127"}
