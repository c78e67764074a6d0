"""SQL building (localbase.rest.query) without a database: names only from the catalog, values only as
bound parameters, whatever the URL says."""

from __future__ import annotations

import pytest
from psycopg import sql

from localbase.rest import errors
from localbase.rest.catalog import Catalog, Column, ForeignKey, Table
from localbase.rest.grammar import parse_condition, parse_logic, parse_order
from localbase.rest.query import Builder, wrap
from localbase.rest.request import EmbedArgs
from localbase.rest.select import parse_select


def col(name: str, typ: str = "text", typname: str = "text") -> Column:
    return Column(name, typ, typname, True, None, False)


def catalog() -> Catalog:
    tickets = Table(
        "tickets",
        {"id": col("id", "uuid", "uuid"), "subject": col("subject"), "customer_id": col("customer_id", "uuid", "uuid")},
        ("id",),
    )
    messages = Table(
        "messages",
        {
            "id": col("id", "uuid", "uuid"),
            "ticket_id": col("ticket_id", "uuid", "uuid"),
            "content": col("content"),
            "data": col("data", "jsonb", "jsonb"),
        },
        ("id",),
    )
    fk = ForeignKey("messages_ticket_id_fkey", "messages", ("ticket_id",), "tickets", ("id",))
    return Catalog({"tickets": tickets, "messages": messages}, [fk], {})


HOSTILE = "'; drop table tickets; -- %s {0} \" \\"


def render(composed: object) -> str:
    text = composed.as_string(None)  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def test_filter_values_are_parameters_never_sql() -> None:
    cat = catalog()
    b = Builder(cat)
    table = cat.tables["messages"]
    where = b.where(
        "_s0",
        table,
        [
            parse_condition("content", f"eq.{HOSTILE}"),
            parse_logic("or", '(content.like.*\'; drop table x*,id.in.("a,b",c))'),
            parse_condition("data->>key", f"neq.{HOSTILE}"),
        ],
    )
    text = render(where)
    assert "drop table" not in text
    assert HOSTILE in b.params.values()
    assert '"_s0"."content" = %(p0)s' in text
    assert {"a,b", "c", "key", "%'; drop table x%"} <= set(b.params.values())


def test_unknown_columns_fail_before_any_sql() -> None:
    cat = catalog()
    for build in (
        lambda b: b.where("_s0", cat.tables["messages"], [parse_condition("nope", "eq.1")]),
        lambda b: b.select_list("_s0", cat.tables["messages"], parse_select("id,nope")),
        lambda b: b.order("_s0", cat.tables["messages"], parse_order('"content; drop".desc')),
    ):
        with pytest.raises(errors.RestError) as err:
            build(Builder(cat))
        assert (err.value.status, err.value.code) == (400, "42703")


def test_identifiers_are_quoted_from_the_catalog() -> None:
    cat = catalog()
    cat.tables["messages"].columns['we"ird'] = col('we"ird')
    b = Builder(cat)
    text = render(b.select_list("_s0", cat.tables["messages"], parse_select('alias:"we\\"ird"')))
    assert text == '"_s0"."we""ird" AS "alias"'


def test_embedding_uses_the_foreign_key_both_ways() -> None:
    cat = catalog()
    b = Builder(cat, embedded={"messages": EmbedArgs(limit=2)})
    text = render(b.select_list("_s0", cat.tables["tickets"], parse_select("id,messages(content)")))
    assert "json_agg(_e)" in text
    assert '"_s1"."ticket_id" = "_s0"."id"' in text
    assert "LIMIT %(p0)s" in text
    b.check_embeds_used()
    b = Builder(cat)
    text = render(b.select_list("_s0", cat.tables["messages"], parse_select("t:tickets(subject)")))
    assert "row_to_json(_e)" in text
    assert '"_s1"."id" = "_s0"."ticket_id"' in text
    with pytest.raises(errors.RestError) as err:
        Builder(cat).select_list("_s0", cat.tables["tickets"], parse_select("profiles(*)"))
    assert err.value.code == "PGRST200"
    b = Builder(cat, embedded={"nothere": EmbedArgs()})
    b.select_list("_s0", cat.tables["tickets"], parse_select("id"))
    with pytest.raises(errors.RestError) as err:
        b.check_embeds_used()
    assert err.value.code == "PGRST108"


def test_casts_come_from_a_fixed_table() -> None:
    cat = catalog()
    b = Builder(cat)
    assert "CAST(" in render(b.select_list("_s0", cat.tables["messages"], parse_select("content::int8")))
    with pytest.raises(errors.RestError):
        Builder(cat).select_list("_s0", cat.tables["messages"], parse_select("content::pg_shadow"))


def test_wrap_builds_json_in_postgres() -> None:
    text = wrap(sql.SQL("SELECT 1"), single=True, strip_nulls=True).as_string(None)
    assert "json_strip_nulls((json_agg(_t) -> 0))" in text
