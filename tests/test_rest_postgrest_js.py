"""supabase-js (Node) against PostgREST 12/13 features of localbase (issue 17); the script is
tests/js/postgrest_features.mjs, the fixture the one of tests/test_rest_postgrest.py."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests import postgrest_fixture
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_js_smoke import JS_DIR, node_ready


@pytest.fixture(scope="module")
def seen(stack: StackProcess, users: Users) -> Iterator[dict[str, Any]]:
    node = node_ready()
    postgrest_fixture.create(stack.db_url)
    try:
        env = {
            **os.environ,
            "SUPABASE_URL": stack.api_url,
            "SUPABASE_ANON_KEY": stack.anon_key,
            "SUPABASE_TOKEN": stack.mint(sub=users.agent.id),
        }
        done = subprocess.run(
            [node, "postgrest_features.mjs"],
            check=False,
            cwd=JS_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        yield json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        postgrest_fixture.drop(stack.db_url)


@pytest.mark.node
def test_range_operators(seen: dict[str, Any]) -> None:
    assert (seen["gte"], seen["lte"]) == ([2], [1, 3])


@pytest.mark.node
def test_embeddings(seen: dict[str, Any]) -> None:
    assert seen["oneToOne"] == [
        {"title": "Pulp Fiction", "pgx_specs": {"camera": "Arriflex"}},
        {"title": "Reservoir Dogs", "pgx_specs": {"camera": "Panavision"}},
        {"title": "Cleo", "pgx_specs": None},
    ]
    assert seen["manyToMany"] == [
        {"name": "Harvey", "pgx_films": [{"title": "Pulp Fiction"}, {"title": "Reservoir Dogs"}]}
    ]
    assert seen["byColumn"] == [
        {"name": "Coffee machine", "billing_address_id": {"name": "Home"}, "shipping": {"name": "Office"}}
    ]
    assert seen["ambiguous"] == {"status": 300, "code": "PGRST201"}
    assert seen["withSpecs"] == [1, 2]
    assert seen["view"] == [{"title": "Cleo", "pgx_directors": {"name": "Agnes"}}]
    assert seen["spread"] == [{"name": "Quentin", "titles": ["Reservoir Dogs", "Pulp Fiction"]}]


@pytest.mark.node
def test_computed_fields_and_array_literals(seen: dict[str, Any]) -> None:
    assert seen["computed"] == [{"id": 3, "pgx_label": "Cleo (1962)"}]
    assert seen["orArray"] == [2, 3]


@pytest.mark.node
def test_upsert_ignoring_duplicates_is_201(seen: dict[str, Any]) -> None:
    assert seen["ignored"] == {"status": 201, "data": []}


@pytest.mark.node
def test_rpc(seen: dict[str, Any]) -> None:
    assert seen["overload"] == {"status": 300, "code": "PGRST203", "byName": 101}
    assert seen["echo"] == {"got": {"anything": [1, 2]}}
    assert seen["capped"] == {"status": 400, "code": "PGRST124"}
    assert seen["afterCap"] == [0, 0, 0]  # the refused call committed nothing
    assert seen["answer"] == {"data": 42, "count": 1}


@pytest.mark.node
def test_aggregates_are_refused_by_default_but_legacy_count_is_served(seen: dict[str, Any]) -> None:
    assert seen["aggregate"] == {"status": 400, "code": "PGRST123"}
    assert seen["legacyCount"] == [
        {"name": "Quentin", "pgx_films": [{"count": 2}]},
        {"name": "Agnes", "pgx_films": [{"count": 1}]},
    ]
