"""SQL for REST requests, composed with psycopg.sql from parsed grammar and the schema cache.

Identifiers only ever come from the catalog (a name from the URL is looked up there first, and
quoted with `sql.Identifier`); values only travel as named bound parameters. Type names in SQL
come from pg_catalog (`format_type`) or from the fixed cast table below. JSON is built by
PostgreSQL (`json_agg`) so value formats match PostgREST's exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from localbase.rest import errors
from localbase.rest.catalog import Catalog, Column, Function, Table
from localbase.rest.embed import Pair, embed_pairs, row_of
from localbase.rest.grammar import Condition, Field, Logic, OrderTerm
from localbase.rest.request import EmbedArgs
from localbase.rest.select import Aggregate, SelectColumn, SelectItem, Star

SCHEMA = "public"

# `col::type` casts allowed in select lists: the names PostgREST users write, mapped to SQL we trust
CASTS = {
    name: sql.SQL(target)
    for name, target in {
        "text": "text",
        "varchar": "varchar",
        "char": "char",
        "uuid": "uuid",
        "json": "json",
        "jsonb": "jsonb",
        "int": "integer",
        "integer": "integer",
        "int2": "smallint",
        "smallint": "smallint",
        "int4": "integer",
        "int8": "bigint",
        "bigint": "bigint",
        "numeric": "numeric",
        "decimal": "numeric",
        "real": "real",
        "float4": "real",
        "float8": "double precision",
        "float": "double precision",
        "bool": "boolean",
        "boolean": "boolean",
        "date": "date",
        "time": "time",
        "timetz": "timetz",
        "timestamp": "timestamp",
        "timestamptz": "timestamptz",
        "interval": "interval",
    }.items()
}
_BINARY_OPS = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "LIKE",
    "ilike": "ILIKE",
    "match": "~",
    "imatch": "~*",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxl": "&>",
    "nxr": "&<",
    "adj": "-|-",
    "isdistinct": "IS DISTINCT FROM",
}
_TEXT_OPS = frozenset({"like", "ilike", "match", "imatch"})
_IS_SQL = {
    "null": "IS NULL",
    "not_null": "IS NOT NULL",
    "true": "IS TRUE",
    "false": "IS FALSE",
    "unknown": "IS UNKNOWN",
}
_FTS_FUNCS = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}


def rendered(query: sql.Composable) -> sql.SQL:
    """The query as one SQL string (placeholders kept), composed now rather than by psycopg on the event loop."""
    return sql.SQL(query.as_string(None))


def trusted(text: str) -> sql.Composable:
    """SQL text read from pg_catalog (a type name, a default expression), with `%` kept literal."""
    return sql.SQL(text.replace("%", "%%"))


@dataclass
class Builder:
    """Accumulates bound parameters and fresh aliases while SQL is composed."""

    catalog: Catalog
    params: dict[str, Any] = field(default_factory=dict)
    aliases: int = 0
    inner_joins: list[sql.Composable] = field(default_factory=list)
    embedded: dict[str, EmbedArgs] = field(default_factory=dict)
    used_embeds: set[str] = field(default_factory=set)
    # `EXISTS (...)` of each embed by (parent alias, output name), for `rel=is.null` / `rel=not.is.null`
    embed_exists: dict[tuple[str, str], sql.Composable] = field(default_factory=dict)
    # (FROM, join condition, target, alias) of each to-one embed, for `order=rel(col)`
    to_one_rows: dict[tuple[str, str], tuple[sql.Composable, sql.Composable, Table, str]] = field(default_factory=dict)

    def check_embeds_used(self) -> None:
        """Every `rel.x=` parameter must name an embedding of the select list."""
        unused = sorted(set(self.embedded) - self.used_embeds)
        if unused:
            raise errors.RestError(
                400,
                "PGRST108",
                f"'{unused[0]}' is not an embedded resource in this request",
                hint=f"Add '{unused[0]}' to the 'select' query parameter.",
            )

    def param(self, value: Any, cast: sql.Composable | None = None) -> sql.Composable:
        name = f"p{len(self.params)}"
        self.params[name] = value
        placeholder: sql.Composable = sql.Placeholder(name)
        if cast is not None:
            placeholder = sql.SQL("({}::{})").format(placeholder, cast)
        return placeholder

    def alias(self) -> str:
        self.aliases += 1
        return f"_s{self.aliases}"

    # expressions ---------------------------------------------------------------------------------

    def column(self, table: Table, name: str) -> Column:
        col = table.columns.get(name)
        if col is None:
            raise errors.unknown_column(table.name, name)
        return col

    def field(self, src: str, table: Table, fld: Field) -> sql.Composable:
        """A column, or a computed field (a function of the row: `full_name(people)`), with its JSON path."""
        expr: sql.Composable
        computed = self.catalog.row_functions.get((table.name, fld.name))
        if fld.name not in table.columns and computed is not None and computed.return_table is None:
            expr = sql.SQL("{}({})").format(sql.Identifier(SCHEMA, computed.name), row_of(src, table))
        else:
            self.column(table, fld.name)
            expr = sql.Identifier(src, fld.name)
        for arrow, key in fld.path:
            key_sql = (
                self.param(int(key), sql.SQL("integer"))
                if re.fullmatch(r"-?\d{1,9}", key)
                else self.param(key, sql.SQL("text"))
            )
            expr = sql.SQL("({} {} {})").format(expr, sql.SQL(arrow), key_sql)
        return expr

    def condition(self, src: str, table: Table, cond: Condition) -> sql.Composable:
        exists = self.embed_exists.get((src, cond.field.name))
        if exists is not None and cond.field.name not in table.columns and not cond.field.path:
            # null filtering on an embedded resource: `not.is.null` keeps rows that have one (like !inner)
            if cond.op != "is" or cond.value != "null":
                raise errors.RestError(
                    400,
                    "PGRST100",
                    f"failed to parse filter on embedded resource '{cond.field.name}'",
                    "only is.null and not.is.null apply to an embedding",
                )
            return exists if cond.negate else sql.SQL("(NOT {})").format(exists)
        lhs = self.field(src, table, cond.field)
        out: sql.Composable
        if cond.op == "is":
            out = sql.SQL("({} {})").format(lhs, sql.SQL(_IS_SQL[str(cond.value)]))
        elif cond.op == "in":
            values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
            out = (
                sql.SQL("({} IN ({}))").format(lhs, sql.SQL(", ").join(self.param(v) for v in values))
                if values
                else sql.SQL("false")
            )
        elif cond.op in _FTS_FUNCS:
            out = self._fts(table, cond, lhs)
        else:
            if cond.op in _TEXT_OPS:
                lhs = sql.SQL("({}::text)").format(lhs)
            op = sql.SQL(_BINARY_OPS[cond.op])
            if cond.modifier in ("any", "all"):
                values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
                joiner = " OR " if cond.modifier == "any" else " AND "
                parts = [sql.SQL("({} {} {})").format(lhs, op, self.param(v)) for v in values]
                out = (
                    sql.SQL("({})").format(sql.SQL(joiner).join(parts))
                    if parts
                    else sql.SQL("false" if cond.modifier == "any" else "true")
                )
            else:
                out = sql.SQL("({} {} {})").format(lhs, op, self.param(cond.value))
        return sql.SQL("(NOT {})").format(out) if cond.negate else out

    def _fts(self, table: Table, cond: Condition, lhs: sql.Composable) -> sql.Composable:
        config = self.param(cond.modifier, sql.SQL("regconfig")) if cond.modifier else None
        col = table.columns.get(cond.field.name)
        if col is None or col.typname != "tsvector" or cond.field.path:
            lhs = (
                sql.SQL("to_tsvector({}, {})").format(config, lhs)
                if config is not None
                else sql.SQL("to_tsvector({})").format(lhs)
            )
        func = sql.SQL(_FTS_FUNCS[cond.op])
        query = (
            sql.SQL("{}({}, {})").format(func, config, self.param(cond.value))
            if config is not None
            else sql.SQL("{}({})").format(func, self.param(cond.value))
        )
        return sql.SQL("({} @@ {})").format(lhs, query)

    def logic(self, src: str, table: Table, node: Condition | Logic) -> sql.Composable:
        if isinstance(node, Condition):
            return self.condition(src, table, node)
        joiner = sql.SQL(" OR " if node.op == "or" else " AND ")
        out = sql.SQL("({})").format(joiner.join(self.logic(src, table, c) for c in node.children))
        return sql.SQL("(NOT {})").format(out) if node.negate else out

    def where(self, src: str, table: Table, nodes: list[Condition | Logic]) -> sql.Composable:
        parts = [self.logic(src, table, n) for n in nodes]
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")

    def order(self, src: str, table: Table, terms: tuple[OrderTerm, ...]) -> sql.Composable:
        if not terms:
            return sql.SQL("")
        parts = []
        for term in terms:
            key = self.field(src, table, term.field) if term.relation is None else self._related_key(src, term)
            part = sql.SQL("{} {}").format(key, sql.SQL("DESC" if term.desc else "ASC"))
            if term.nulls:
                part = sql.SQL("{} NULLS {}").format(part, sql.SQL("FIRST" if term.nulls == "first" else "LAST"))
            parts.append(part)
        return sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(parts))

    def _related_key(self, src: str, term: OrderTerm) -> sql.Composable:
        """`order=directors(last_name)`: the column of the to-one embedding `directors` of this select."""
        assert term.relation is not None
        found = self.to_one_rows.get((src, term.relation))
        if found is None:
            raise errors.RestError(
                400,
                "PGRST108",
                f"'{term.relation}' is not an embedded resource in this request",
                hint=f"Add '{term.relation}' to the 'select' query parameter, as a to-one "
                "(many-to-one or one-to-one) embedding.",
            )
        from_sql, cond, target, alias = found
        return sql.SQL("(SELECT {} FROM {} WHERE {} LIMIT 1)").format(
            self.field(alias, target, term.field), from_sql, cond
        )

    # select lists and embedding -----------------------------------------------------------------------

    def select_pairs(self, src: str, table: Table, items: tuple[SelectItem, ...], path: str = "") -> list[Pair]:
        """(expression, output name, is aggregate) for each selected item; a star is the table's columns."""
        pairs: list[Pair] = []
        for item in items:
            if isinstance(item, Star):
                pairs.extend((sql.Identifier(src, name), name, False) for name in table.columns)
            elif isinstance(item, SelectColumn) and item.field == Field("count") and "count" not in table.columns:
                # the legacy `rel(count)`, older than aggregates and served whatever db-aggregates-enabled says
                pairs.append((self._cast(sql.SQL("count(*)"), item.cast), item.alias or "count", True))
            elif isinstance(item, SelectColumn):
                expr = self._cast(self.field(src, table, item.field), item.cast)
                name = item.alias or (item.field.path[-1][1] if item.field.path else item.field.name)
                pairs.append((expr, name, False))
            elif isinstance(item, Aggregate):
                pairs.append(self._aggregate(src, table, item))
            else:
                pairs.extend(embed_pairs(self, src, table, item, path))
        if not pairs:
            raise errors.RestError(400, "PGRST100", "failed to parse select parameter: nothing selected")
        return pairs

    def select_list(self, src: str, table: Table, items: tuple[SelectItem, ...], path: str = "") -> sql.Composable:
        """The select list of a query without aggregates (writes return rows this way)."""
        pairs = self.select_pairs(src, table, items, path)
        if any(agg for _, _, agg in pairs):
            raise errors.RestError(400, "PGRST100", "aggregates are only allowed when reading")
        return self.render_pairs(pairs)[0]

    @staticmethod
    def render_pairs(pairs: list[Pair]) -> tuple[sql.Composable, sql.Composable]:
        """`expr AS name, ...` and, when some are aggregates, ` GROUP BY` the others' positions."""
        rendered = sql.SQL(", ").join(sql.SQL("{} AS {}").format(e, sql.Identifier(n)) for e, n, _ in pairs)
        if not any(agg for _, _, agg in pairs):
            return rendered, sql.SQL("")
        keys = [str(i) for i, (_, _, agg) in enumerate(pairs, start=1) if not agg]
        return rendered, sql.SQL(" GROUP BY " + ", ".join(keys)) if keys else sql.SQL("")

    def _cast(self, expr: sql.Composable, cast: str | None) -> sql.Composable:
        if cast is None:
            return expr
        target = CASTS.get(cast.lower())
        if target is None:
            raise errors.RestError(400, "PGRST100", f"failed to parse select parameter: unknown cast type {cast!r}")
        return sql.SQL("CAST({} AS {})").format(expr, target)

    def aggregate_parts(
        self, src: str, table: Table, item: Aggregate, *, check: bool = True
    ) -> tuple[sql.Composable, Callable[[sql.Composable], sql.Composable]]:
        """(input, function applied to an input): apart, so a spread can hoist the function to its parent.
        `count()` counts rows, so its input is `1` (NULL where a to-one spread found no row)."""
        if check and not self.catalog.aggregates_enabled:
            raise errors.RestError(400, "PGRST123", "Use of aggregate functions is not allowed")
        function = "count" if item.field is None else item.function
        arg = sql.SQL("1") if item.field is None else self._cast(self.field(src, table, item.field), item.input_cast)

        def apply(value: sql.Composable) -> sql.Composable:
            return self._cast(sql.SQL("{}({})").format(sql.SQL(function), value), item.cast)

        return arg, apply

    def _aggregate(self, src: str, table: Table, item: Aggregate) -> Pair:
        arg, apply = self.aggregate_parts(src, table, item)
        expr = apply(sql.SQL("*")) if item.field is None else apply(arg)
        return expr, item.alias or item.function, True


# CSV as PostgREST builds it: a header of the first row's keys, then each row's record text without
# its parentheses (PostgreSQL's record output already quotes and doubles quotes CSV-style)
_CSV_BODY = sql.SQL(
    "coalesce((SELECT string_agg(k, ',') FROM json_object_keys(json_agg(_t) -> 0) AS k) || E'\\n', '')"
    " || coalesce(string_agg(substring(_t::text, 2, length(_t::text) - 2), E'\\n'), '')"
)


def wrap(
    source: sql.Composable,
    *,
    total: sql.Composable | None = None,
    single: bool = False,
    strip_nulls: bool = False,
    csv: bool = False,
) -> sql.Composed:
    """Turn a row source into `(total, row count, body text)`, the JSON (or CSV) built by PostgreSQL."""
    body: sql.Composable = sql.SQL("(json_agg(_t) -> 0)") if single else sql.SQL("coalesce(json_agg(_t), '[]'::json)")
    if strip_nulls:
        body = sql.SQL("json_strip_nulls({})").format(body)
    if csv:
        body = _CSV_BODY
    return sql.SQL("SELECT {} AS total, count(_t) AS n, {}::text AS body FROM ({}) _t").format(
        total if total is not None else sql.SQL("NULL::bigint"), body, source
    )


def insert_source(
    builder: Builder, table: Table, columns: tuple[str, ...], body_json: str, missing_default: bool
) -> sql.Composable:
    """`INSERT ... SELECT` source rows from the JSON array, typed by the table's row type."""
    rel = sql.Identifier(SCHEMA, table.name)
    body = builder.param(body_json, sql.SQL("json"))
    if not missing_default:
        cols = sql.SQL(", ").join(sql.Identifier("_r", c) for c in columns)
        return sql.SQL("SELECT {} FROM json_populate_recordset(NULL::{}, {}) AS _r").format(cols, rel, body)
    exprs: list[sql.Composable] = []
    for name in columns:
        col = table.columns[name]
        default = trusted(col.default) if col.default and not col.generated else sql.SQL("NULL")
        exprs.append(
            sql.SQL("CASE WHEN (_j.obj::jsonb) ? {} THEN {} ELSE {} END").format(
                builder.param(name, sql.SQL("text")), sql.Identifier("_r", name), default
            )
        )
    return sql.SQL(
        "SELECT {} FROM json_array_elements({}) AS _j(obj), LATERAL json_populate_record(NULL::{}, _j.obj) AS _r"
    ).format(sql.SQL(", ").join(exprs), body, rel)


def function_call(
    builder: Builder, fn: Function, args: dict[str, Any], args_json: str
) -> tuple[sql.Composable, sql.Composable]:
    """`(FROM clause prefix, call expression)` calling fn with named args from a JSON object."""
    used = [a for a in fn.args if a.name in args]
    name = sql.Identifier(SCHEMA, fn.name)
    if not used:
        return sql.SQL(""), sql.SQL("{}()").format(name)
    record = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(a.name), trusted(a.type)) for a in used)
    source = sql.SQL("json_to_record({}) AS _a({})").format(builder.param(args_json, sql.SQL("json")), record)
    call = sql.SQL("{}({})").format(
        name,
        sql.SQL(", ").join(
            sql.SQL("{} => {}").format(sql.Identifier(a.name), sql.Identifier("_a", a.name)) for a in used
        ),
    )
    return source, call
