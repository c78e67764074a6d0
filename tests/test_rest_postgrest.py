"""PostgREST 12/13 behaviour through supabase-py (issue 17): range operators, embeddings of every kind,
spreads, computed fields and relationships, array literals in or=, upsert statuses, RPC overloads,
single-parameter functions, max-affected, counts of scalar functions, aggregates behind a setting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from supabase import Client

from tests import postgrest_fixture
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_rest_clients import ClientFactory, clients_fixture

uses_clients = clients_fixture


@pytest.fixture(scope="module")
def pgx(stack: StackProcess) -> Iterator[None]:
    postgrest_fixture.create(stack.db_url)
    yield
    postgrest_fixture.drop(stack.db_url)


@pytest.fixture(scope="module")
def sb(pgx: None, clients: ClientFactory, stack: StackProcess, users: Users) -> Client:
    return clients(stack.mint(sub=users.agent.id))


def _error(exc: pytest.ExceptionInfo[APIError]) -> dict[str, Any]:
    return {"code": exc.value.code, "message": exc.value.message}


def test_range_gte_and_lte_are_not_swapped(sb: Client) -> None:
    """nxl (range_gte) is `&>`, nxr (range_lte) is `&<`; they were swapped and answered 200 with wrong rows."""
    gte = sb.table("pgx_shapes").select("id").range_gte("span", (3, 12)).order("id").execute()
    lte = sb.table("pgx_shapes").select("id").range_lte("span", (3, 12)).order("id").execute()
    assert [r["id"] for r in gte.data] == [2]
    assert [r["id"] for r in lte.data] == [1, 3]


def test_one_to_one_embeds_an_object_both_ways(sb: Client) -> None:
    films = sb.table("pgx_films").select("title,pgx_specs(camera)").order("id").execute().data
    assert films == [
        {"title": "Pulp Fiction", "pgx_specs": {"camera": "Arriflex"}},
        {"title": "Reservoir Dogs", "pgx_specs": {"camera": "Panavision"}},
        {"title": "Cleo", "pgx_specs": None},
    ]
    specs = sb.table("pgx_specs").select("camera,pgx_films(title)").eq("film_id", 1).execute().data
    assert specs == [{"camera": "Arriflex", "pgx_films": {"title": "Pulp Fiction"}}]


def test_many_to_many_through_a_join_table(sb: Client) -> None:
    actors = (
        sb.table("pgx_actors")
        .select("name,pgx_films(title)")
        .order("id")
        .order("id", foreign_table="pgx_films")
        .execute()
        .data
    )
    assert actors == [
        {"name": "Uma", "pgx_films": [{"title": "Pulp Fiction"}]},
        {"name": "Harvey", "pgx_films": [{"title": "Pulp Fiction"}, {"title": "Reservoir Dogs"}]},
        {"name": "Tim", "pgx_films": [{"title": "Reservoir Dogs"}]},
    ]


def test_two_keys_to_one_table_need_a_hint(sb: Client) -> None:
    with pytest.raises(APIError) as err:
        sb.table("pgx_orders").select("name,pgx_addresses(name)").execute()
    assert err.value.code == "PGRST201"
    assert "pgx_addresses!pgx_billing" in str(err.value.hint)
    hinted = (
        sb.table("pgx_orders")
        .select("name,billing:pgx_addresses!pgx_billing(name),shipping:pgx_addresses!shipping_address_id(name)")
        .eq("id", 1)
        .execute()
        .data
    )
    assert hinted == [{"name": "Coffee machine", "billing": {"name": "Home"}, "shipping": {"name": "Office"}}]
    back = sb.table("pgx_addresses").select("name,billed:pgx_orders!pgx_billing(name)").eq("id", 2).execute().data
    assert back == [{"name": "Office", "billed": [{"name": "Water filter"}]}]


def test_embedding_by_foreign_key_column_and_constraint_name(sb: Client) -> None:
    rows = sb.table("pgx_orders").select("name,billing_address_id(name),pgx_shipping(name)").eq("id", 1).execute()
    assert rows.data == [
        {"name": "Coffee machine", "billing_address_id": {"name": "Home"}, "pgx_shipping": {"name": "Office"}}
    ]


def test_self_reference_by_column_and_computed_relationships(sb: Client) -> None:
    with pytest.raises(APIError) as err:
        sb.table("pgx_employees").select("name,pgx_employees(name)").execute()
    assert err.value.code == "PGRST201"
    rows = (
        sb.table("pgx_employees")
        .select("name,boss:supervisor_id(name),pgx_boss(name),pgx_supervisees(name)")
        .order("id")
        .execute()
        .data
    )
    assert rows[0] == {
        "name": "Taylor",
        "boss": None,
        "pgx_boss": None,
        "pgx_supervisees": [{"name": "Johnson"}, {"name": "Miller"}],
    }
    assert rows[2] == {
        "name": "Miller",
        "boss": {"name": "Taylor"},
        "pgx_boss": {"name": "Taylor"},
        "pgx_supervisees": [],
    }


def test_null_filtering_on_embedded_resources(sb: Client) -> None:
    with_specs = sb.table("pgx_films").select("id,pgx_specs(camera)").not_.is_("pgx_specs", "null").order("id")
    without = sb.table("pgx_films").select("id,pgx_specs(camera)").is_("pgx_specs", "null")
    assert [r["id"] for r in with_specs.execute().data] == [1, 2]
    assert without.execute().data == [{"id": 3, "pgx_specs": None}]


def test_empty_embeds_filter_across_resources(sb: Client) -> None:
    """PostgREST's "OR filtering across embedded resources": films with an actor Tim or an Arriflex camera."""
    rows = (
        sb.table("pgx_films")
        .select("title,act:pgx_actors(),spec:pgx_specs()")
        .eq("act.name", "Tim")
        .eq("spec.camera", "Arriflex")
        .or_("act.not.is.null,spec.not.is.null")
        .order("id")
        .execute()
        .data
    )
    assert rows == [{"title": "Pulp Fiction"}, {"title": "Reservoir Dogs"}]
    inner = sb.table("pgx_films").select("title,pgx_actors!inner()").eq("pgx_actors.name", "Uma").execute().data
    assert inner == [{"title": "Pulp Fiction"}]


def test_top_level_order_by_a_to_one_embedding(sb: Client) -> None:
    rows = (
        sb.table("pgx_films")
        .select("title,pgx_directors(name)")
        .order("pgx_directors(name)")
        .order("year")
        .execute()
        .data
    )
    assert [r["title"] for r in rows] == ["Cleo", "Reservoir Dogs", "Pulp Fiction"]
    with pytest.raises(APIError) as err:
        sb.table("pgx_films").select("title").order("pgx_directors(name)").execute()
    assert err.value.code == "PGRST108"


def test_embedding_through_a_view(sb: Client) -> None:
    rows = sb.table("pgx_films_view").select("title,pgx_directors(name),pgx_specs(camera)").eq("id", 2).execute()
    assert rows.data == [
        {"title": "Reservoir Dogs", "pgx_directors": {"name": "Quentin"}, "pgx_specs": {"camera": "Panavision"}}
    ]
    back = sb.table("pgx_directors").select("name,pgx_films_view(title)").eq("id", 2).execute().data
    assert back == [{"name": "Agnes", "pgx_films_view": [{"title": "Cleo"}]}]
    # a join view that renames the key column (film_id as movie): followed through the view's rewrite rule
    cast = sb.table("pgx_cast").select("actor,character,pgx_films(title)").eq("character", "Mia").execute().data
    assert cast == [{"actor": "Uma", "character": "Mia", "pgx_films": {"title": "Pulp Fiction"}}]
    film = (
        sb.table("pgx_films")
        .select("title,pgx_cast(actor)")
        .eq("id", 2)
        .order("actor", foreign_table="pgx_cast")
        .execute()
        .data
    )
    assert film == [{"title": "Reservoir Dogs", "pgx_cast": [{"actor": "Harvey"}, {"actor": "Tim"}]}]


def test_spread_to_one_and_to_many(sb: Client) -> None:
    one = sb.table("pgx_films").select("title,...pgx_directors(director:name)").eq("id", 3).execute().data
    assert one == [{"title": "Cleo", "director": "Agnes"}]
    many = (
        sb.table("pgx_directors")
        .select("name,...pgx_films(titles:title,years:year)")
        .eq("id", 1)
        .order("year", foreign_table="pgx_films")
        .execute()
        .data
    )
    assert many == [{"name": "Quentin", "titles": ["Reservoir Dogs", "Pulp Fiction"], "years": [1992, 1994]}]


def test_computed_field_selected_filtered_and_ordered(sb: Client) -> None:
    rows = (
        sb.table("pgx_films").select("id,pgx_label").neq("pgx_label", "Cleo (1962)").order("pgx_label").execute().data
    )
    assert rows == [{"id": 1, "pgx_label": "Pulp Fiction (1994)"}, {"id": 2, "pgx_label": "Reservoir Dogs (1992)"}]
    star = sb.table("pgx_films").select("*").eq("id", 1).execute().data[0]
    assert "pgx_label" not in star  # computed fields are only there when named


def test_or_with_array_literals(sb: Client) -> None:
    rows = sb.table("pgx_shapes").select("id").or_("tags.cs.{a,c},id.eq.2").order("id").execute().data
    assert [r["id"] for r in rows] == [2, 3]


def test_upsert_ignoring_duplicates_answers_201(stack: StackProcess, users: Users, pgx: None) -> None:
    headers = {
        "apikey": stack.anon_key,
        "Authorization": f"Bearer {stack.mint(sub=users.agent.id)}",
        "Prefer": "resolution=ignore-duplicates,return=representation",
    }
    answer = httpx.post(f"{stack.api_url}/rest/v1/pgx_addresses", headers=headers, json={"id": 1, "name": "Nope"})
    assert (answer.status_code, answer.json()) == (201, [])


def test_rpc_overloads_are_chosen_by_argument_names(sb: Client) -> None:
    assert sb.rpc("pgx_add", {"x": 1}).execute().data == 101
    with pytest.raises(APIError) as err:
        sb.rpc("pgx_add", {"a": 1, "b": 2}).execute()
    assert err.value.code == "PGRST203"
    assert "public.pgx_add(a => integer, b => integer)" in err.value.message


def test_rpc_with_one_unnamed_json_parameter_takes_the_body(sb: Client) -> None:
    assert sb.rpc("pgx_echo", {"anything": [1, 2]}).execute().data == {"got": {"anything": [1, 2]}}


def test_rpc_with_one_unnamed_text_parameter_takes_a_text_body(stack: StackProcess, users: Users, pgx: None) -> None:
    headers = {
        "apikey": stack.anon_key,
        "Authorization": f"Bearer {stack.mint(sub=users.agent.id)}",
        "Content-Type": "text/plain",
    }
    answer = httpx.post(f"{stack.api_url}/rest/v1/rpc/pgx_shout", headers=headers, content="hello, world")
    assert (answer.status_code, answer.json()) == (200, "HELLO, WORLD")


def test_rpc_max_affected_fails_and_commits_nothing(sb: Client, stack: StackProcess) -> None:
    with pytest.raises(APIError) as err:
        sb.rpc("pgx_bump", {"step": 5}).max_affected(2).execute()
    assert err.value.code == "PGRST124"
    with psycopg.connect(stack.db_url) as conn:
        assert conn.execute("select sum(n) from pgx_counters").fetchone() == (0,)
    assert len(sb.rpc("pgx_bump", {"step": 0}).max_affected(3).execute().data) == 3


def test_rpc_count_of_a_scalar_function(sb: Client) -> None:
    res = sb.rpc("pgx_answer", {}, count="exact").execute()  # type: ignore[arg-type]
    assert (res.data, res.count) == (42, 1)


def _aggregates_once_reloaded(sb: Client, enabled: bool) -> Any:
    """Poll (bounded) until `NOTIFY pgrst` has reloaded the schema cache with the setting."""
    deadline = time.monotonic() + 20
    while True:
        try:
            rows = sb.table("pgx_sales").select("region,total:amount.sum(),count()").order("region").execute().data
            if enabled:
                return rows
        except APIError as exc:
            if not enabled:
                return exc.code
        assert time.monotonic() < deadline, "NOTIFY pgrst did not reload the schema cache"
        time.sleep(0.05)  # between polls of the condition


def test_legacy_count_in_an_embed_needs_no_setting(sb: Client) -> None:
    """`select('*, cities(count)')`, Supabase's documented way to count related rows."""
    rows = sb.table("pgx_directors").select("name,pgx_films(count)").order("id").execute().data
    assert rows == [{"name": "Quentin", "pgx_films": [{"count": 2}]}, {"name": "Agnes", "pgx_films": [{"count": 1}]}]


def test_aggregates_are_off_by_default_and_follow_the_setting(sb: Client, stack: StackProcess) -> None:
    with pytest.raises(APIError) as err:
        sb.table("pgx_sales").select("region,amount.sum()").execute()
    assert err.value.code == "PGRST123"
    with psycopg.connect(stack.db_url, autocommit=True) as conn:  # as Supabase's docs say to enable them
        conn.execute("alter role authenticator set pgrst.db_aggregates_enabled = 'true'")
        conn.execute("notify pgrst, 'reload config'")
    try:
        rows = _aggregates_once_reloaded(sb, enabled=True)
        assert rows == [{"region": "north", "total": 15, "count": 2}, {"region": "south", "total": 7, "count": 1}]
    finally:
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            conn.execute("alter role authenticator reset pgrst.db_aggregates_enabled")
            conn.execute("notify pgrst")
    assert _aggregates_once_reloaded(sb, enabled=False) == "PGRST123"


def test_put_upserts_one_row_by_its_primary_key(stack: StackProcess, users: Users, pgx: None) -> None:
    base = f"{stack.api_url}/rest/v1/pgx_actors"
    auth = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.mint(sub=users.agent.id)}"}
    rep = {**auth, "Prefer": "return=representation"}
    created = httpx.put(f"{base}?id=eq.9", headers=rep, json={"id": 9, "name": "Pam"})
    assert (created.status_code, created.json()) == (201, [{"id": 9, "name": "Pam"}])
    updated = httpx.put(f"{base}?id=eq.9", headers=rep, json={"id": 9, "name": "Pamela"})
    assert (updated.status_code, updated.json()) == (200, [{"id": 9, "name": "Pamela"}])
    assert httpx.put(f"{base}?id=eq.9", headers=auth, json={"id": 9, "name": "P."}).status_code == 204
    assert httpx.put(f"{base}?id=eq.10", headers=auth, json={"id": 10, "name": "Q"}).status_code == 201
    wrong = httpx.put(f"{base}?id=eq.9", headers=auth, json={"id": 8, "name": "X"})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "PGRST115")
    unkeyed = httpx.put(f"{base}?name=eq.Pam", headers=auth, json={"id": 9, "name": "X"})
    assert (unkeyed.status_code, unkeyed.json()["code"]) == (405, "PGRST105")
    with psycopg.connect(stack.db_url) as conn:
        assert conn.execute("select id, name from pgx_actors where id >= 8 order by id").fetchall() == [
            (9, "P."),
            (10, "Q"),
        ]
