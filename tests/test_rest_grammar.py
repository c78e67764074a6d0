"""PostgREST grammar parsing (localbase.rest.grammar), pure and without I/O."""

from __future__ import annotations

import pytest

from localbase.rest.grammar import (
    Condition,
    Field,
    GrammarError,
    Logic,
    OrderTerm,
    parse_condition,
    parse_logic,
    parse_names,
    parse_order,
    parse_prefer,
    parse_range,
    split_top,
)
from localbase.rest.select import Embed, SelectColumn, Star, parse_select


def test_select_star_and_columns() -> None:
    assert parse_select("*") == (Star(),)
    assert parse_select("") == (Star(),)
    assert parse_select(" id , content ") == (SelectColumn(Field("id")), SelectColumn(Field("content")))


def test_select_alias_cast_and_json_paths() -> None:
    assert parse_select("who:sender_id,n::text,data->a->>b,x:data->0") == (
        SelectColumn(Field("sender_id"), alias="who"),
        SelectColumn(Field("n"), cast="text"),
        SelectColumn(Field("data", (("->", "a"), ("->>", "b")))),
        SelectColumn(Field("data", (("->", "0"),)), alias="x"),
    )


def test_select_quoted_names_keep_spaces_and_commas() -> None:
    assert parse_select('"my col","a,b"') == (SelectColumn(Field("my col")), SelectColumn(Field("a,b")))


def test_select_embeddings_with_alias_hint_and_inner() -> None:
    items = parse_select("*,messages(*),sender:profiles!sender_id(display_name),t:tickets!inner(id,subject)")
    assert items[1] == Embed("messages", (Star(),))
    assert items[2] == Embed("profiles", (SelectColumn(Field("display_name")),), alias="sender", hint="sender_id")
    assert items[3] == Embed(
        "tickets", (SelectColumn(Field("id")), SelectColumn(Field("subject"))), alias="t", inner=True
    )


def test_select_nested_embedding() -> None:
    (embed,) = parse_select("messages(id,sender:profiles(display_name))")
    assert isinstance(embed, Embed)
    assert embed.items[1] == Embed("profiles", (SelectColumn(Field("display_name")),), alias="sender")


@pytest.mark.parametrize(
    "bad", ["id,", "a,,b", "x::bad-type", "(x)", "messages(", "id)", '"unterminated', "a\x00b", "...spread", "sum()"]
)
def test_malformed_select_is_a_grammar_error(bad: str) -> None:
    with pytest.raises(GrammarError) as err:
        parse_select(bad)
    assert err.value.code == "PGRST100"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("age", "eq.18", Condition(Field("age"), "eq", "18")),
        ("age", "not.gte.18", Condition(Field("age"), "gte", "18", negate=True)),
        ("name", "like.*ab*", Condition(Field("name"), "like", "%ab%")),
        ("name", "ilike.A*", Condition(Field("name"), "ilike", "A%")),
        ("x", "is.NULL", Condition(Field("x"), "is", "null")),
        ("x", "not.is.not_null", Condition(Field("x"), "is", "not_null", negate=True)),
        ("s", 'in.(open,"a,b","q\\"x")', Condition(Field("s"), "in", ("open", "a,b", 'q"x'))),
        ("s", "in.()", Condition(Field("s"), "in", ())),
        ("tags", "cs.{a,b}", Condition(Field("tags"), "cs", "{a,b}")),
        ("doc", "fts(english).cat & dog", Condition(Field("doc"), "fts", "cat & dog", modifier="english")),
        ("doc", "wfts.cat -dog", Condition(Field("doc"), "wfts", "cat -dog")),
        ("n", "eq(any).{1,2}", Condition(Field("n"), "eq", ("1", "2"), modifier="any")),
        ("n", "like(all).{a*,*b}", Condition(Field("n"), "like", ("a%", "%b"), modifier="all")),
        ("data->>k", "eq.v", Condition(Field("data", (("->>", "k"),)), "eq", "v")),
        ("x", "isdistinct.5", Condition(Field("x"), "isdistinct", "5")),
        ("x", "eq.a.b.c", Condition(Field("x"), "eq", "a.b.c")),
        ("x", "eq.", Condition(Field("x"), "eq", "")),
    ],
)
def test_conditions(key: str, value: str, expected: Condition) -> None:
    assert parse_condition(key, value) == expected


@pytest.mark.parametrize(
    "value", ["eq", "zz.1", "is.maybe", "in.1,2", "in.(1,2", "eq(bogus).1", "fts(a b).x", "not.", "eq.\x00"]
)
def test_malformed_conditions(value: str) -> None:
    with pytest.raises(GrammarError):
        parse_condition("col", value)


def test_or_and_nested_logic() -> None:
    tree = parse_logic("or", "(a.eq.14,not.and(b.gte.11,b.lte.17),c.in.(1,2))")
    assert tree == Logic(
        "or",
        (
            Condition(Field("a"), "eq", "14"),
            Logic("and", (Condition(Field("b"), "gte", "11"), Condition(Field("b"), "lte", "17")), negate=True),
            Condition(Field("c"), "in", ("1", "2")),
        ),
    )
    assert parse_logic("not.and", "(a.eq.1)").negate


def test_logic_values_may_be_quoted() -> None:
    tree = parse_logic("or", '(subject.eq."hello, (world)",subject.like.*x*)')
    assert tree.children == (
        Condition(Field("subject"), "eq", "hello, (world)"),
        Condition(Field("subject"), "like", "%x%"),
    )


@pytest.mark.parametrize("value", ["a.eq.1", "(a.eq.1", "()", "(a)", "(a.zz.1)", "(or(a.eq.1)"])
def test_malformed_logic(value: str) -> None:
    with pytest.raises(GrammarError):
        parse_logic("or", value)


def test_order_terms() -> None:
    assert parse_order("created_at.desc.nullslast,id,name.asc.nullsfirst,data->>k.desc") == (
        OrderTerm(Field("created_at"), desc=True, nulls="last"),
        OrderTerm(Field("id")),
        OrderTerm(Field("name"), nulls="first"),
        OrderTerm(Field("data", (("->>", "k"),)), desc=True),
    )
    with pytest.raises(GrammarError):
        parse_order("a.asc.desc")
    with pytest.raises(GrammarError):
        parse_order("a,,b")


def test_names_accept_quoted_columns() -> None:
    assert parse_names('"ticket_id","content","we\\"ird"') == ("ticket_id", "content", 'we"ird')
    assert parse_names("a,b") == ("a", "b")


def test_range_header() -> None:
    assert parse_range("0-9") == (0, 9)
    assert parse_range("items=5-") == (5, None)
    assert parse_range("9-0") is None
    assert parse_range("junk") is None
    assert parse_range(None) is None


def test_prefer_parses_repeated_headers_with_spaces() -> None:
    prefer = parse_prefer(
        [
            "return=representation, count=exact",
            "resolution=merge-duplicates,missing=default",
            "tx=rollback",
            "handling=strict,max-affected=3",
        ]
    )
    assert prefer.return_ == "representation"
    assert prefer.count == "exact"
    assert prefer.resolution == "merge-duplicates"
    assert prefer.missing_default and prefer.handling_strict
    assert prefer.invalid == [] and "tx=rollback" not in prefer.applied, "known to PostgREST, but not applied"
    assert prefer.max_affected == 3
    assert parse_prefer([]).return_ == "minimal"
    with pytest.raises(GrammarError):
        parse_prefer(["max-affected=lots"])


def test_split_top_respects_quotes_and_parentheses() -> None:
    assert split_top('a,"b,c",d(e,f),g') == ["a", '"b,c"', "d(e,f)", "g"]
    with pytest.raises(GrammarError):
        split_top("a,(b")


def test_spread_and_aggregates_parse() -> None:
    from localbase.rest.select import Aggregate

    assert parse_select("id,...profiles!sender_id(name)") == (
        SelectColumn(Field("id")),
        Embed("profiles", (SelectColumn(Field("name")),), hint="sender_id", spread=True),
    )
    assert parse_select("count(),total:amount.sum()::int,amount::int.avg()") == (
        Aggregate("count"),
        Aggregate("sum", Field("amount"), alias="total", cast="int"),
        Aggregate("avg", Field("amount"), input_cast="int"),
    )


def test_or_conditions_may_hold_array_literals() -> None:
    """Issue 17: `{a,b}` inside or=(...) was split at its comma."""
    tree = parse_logic("or", '(tags.cs.{a,b},tags.ov.{"c,d",e},id.eq.1)')
    assert [c.value for c in tree.children if isinstance(c, Condition)] == ["{a,b}", '{"c,d",e}', "1"]


def test_strict_handling_refuses_unknown_preferences() -> None:
    assert parse_prefer(["handling=lenient, foo, bar"]).invalid == ["foo", "bar"]
    with pytest.raises(GrammarError) as err:
        parse_prefer(["handling=strict, foo", "bar=1"])
    assert (err.value.code, err.value.details) == ("PGRST122", "Invalid preferences: foo, bar=1")
    assert parse_prefer(["handling=strict,return=representation,count=exact,max-affected=3"]).max_affected == 3
