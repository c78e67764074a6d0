"""SQL for REST requests, composed with psycopg.sql from parsed grammar and the schema cache.

Identifiers only ever come from the catalog (a name from the URL is looked up there first, and
quoted with `sql.Identifier`); values only travel as named bound parameters. Type names in SQL
come from pg_catalog (`format_type`) or from the fixed cast table below. JSON is built by
PostgreSQL (`json_agg`) so value formats match PostgREST's exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from localbase.rest import errors
from localbase.rest.catalog import Catalog, Column, ForeignKey, Function, Table
from localbase.rest.grammar import Condition, Embed, Field, Logic, OrderTerm, SelectColumn, SelectItem, Star
from localbase.rest.request import EmbedArgs

SCHEMA = "public"

# `col::type` casts allowed in select lists: the names PostgREST users write, mapped to SQL we trust
CASTS = {
    name: sql.SQL(target) for name, target in {
        "text": "text", "varchar": "varchar", "char": "char", "uuid": "uuid", "json": "json", "jsonb": "jsonb",
        "int": "integer", "integer": "integer", "int2": "smallint", "smallint": "smallint", "int4": "integer",
        "int8": "bigint", "bigint": "bigint", "numeric": "numeric", "decimal": "numeric", "real": "real",
        "float4": "real", "float8": "double precision", "float": "double precision", "bool": "boolean",
        "boolean": "boolean", "date": "date", "time": "time", "timetz": "timetz", "timestamp": "timestamp",
        "timestamptz": "timestamptz", "interval": "interval",
    }.items()
}
_BINARY_OPS = {
    "eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE", "ilike": "ILIKE",
    "match": "~", "imatch": "~*", "cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxl": "&<",
    "nxr": "&>", "adj": "-|-", "isdistinct": "IS DISTINCT FROM",
}
_TEXT_OPS = frozenset({"like", "ilike", "match", "imatch"})
_IS_SQL = {"null": "IS NULL", "not_null": "IS NOT NULL", "true": "IS TRUE", "false": "IS FALSE",
           "unknown": "IS UNKNOWN"}
_FTS_FUNCS = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery",
              "wfts": "websearch_to_tsquery"}


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

    def check_embeds_used(self) -> None:
        """Every `rel.x=` parameter must name an embedding of the select list."""
        unused = sorted(set(self.embedded) - self.used_embeds)
        if unused:
            raise errors.RestError(400, "PGRST108", f"'{unused[0]}' is not an embedded resource in this request",
                                   hint=f"Add '{unused[0]}' to the 'select' query parameter.")

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
        self.column(table, fld.name)
        expr: sql.Composable = sql.Identifier(src, fld.name)
        for arrow, key in fld.path:
            key_sql = self.param(int(key), sql.SQL("integer")) if re.fullmatch(r"-?\d{1,9}", key) \
                else self.param(key, sql.SQL("text"))
            expr = sql.SQL("({} {} {})").format(expr, sql.SQL(arrow), key_sql)
        return expr

    def condition(self, src: str, table: Table, cond: Condition) -> sql.Composable:
        lhs = self.field(src, table, cond.field)
        out: sql.Composable
        if cond.op == "is":
            out = sql.SQL("({} {})").format(lhs, sql.SQL(_IS_SQL[str(cond.value)]))
        elif cond.op == "in":
            values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
            out = sql.SQL("({} IN ({}))").format(lhs, sql.SQL(", ").join(self.param(v) for v in values)) \
                if values else sql.SQL("false")
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
                out = sql.SQL("({})").format(sql.SQL(joiner).join(parts)) if parts \
                    else sql.SQL("false" if cond.modifier == "any" else "true")
            else:
                out = sql.SQL("({} {} {})").format(lhs, op, self.param(cond.value))
        return sql.SQL("(NOT {})").format(out) if cond.negate else out

    def _fts(self, table: Table, cond: Condition, lhs: sql.Composable) -> sql.Composable:
        config = self.param(cond.modifier, sql.SQL("regconfig")) if cond.modifier else None
        col = table.columns[cond.field.name]
        if col.typname != "tsvector" or cond.field.path:
            lhs = sql.SQL("to_tsvector({}, {})").format(config, lhs) if config is not None \
                else sql.SQL("to_tsvector({})").format(lhs)
        func = sql.SQL(_FTS_FUNCS[cond.op])
        query = sql.SQL("{}({}, {})").format(func, config, self.param(cond.value)) if config is not None \
            else sql.SQL("{}({})").format(func, self.param(cond.value))
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
            part = sql.SQL("{} {}").format(self.field(src, table, term.field), sql.SQL("DESC" if term.desc else "ASC"))
            if term.nulls:
                part = sql.SQL("{} NULLS {}").format(part, sql.SQL("FIRST" if term.nulls == "first" else "LAST"))
            parts.append(part)
        return sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(parts))

    # select lists and embedding -----------------------------------------------------------------------

    def select_list(self, src: str, table: Table, items: tuple[SelectItem, ...], path: str = "") -> sql.Composable:
        parts: list[sql.Composable] = []
        for item in items:
            if isinstance(item, Star):
                parts.extend(sql.Identifier(src, name) for name in table.columns)
            elif isinstance(item, SelectColumn):
                expr = self.field(src, table, item.field)
                if item.cast is not None:
                    cast = CASTS.get(item.cast.lower())
                    if cast is None:
                        raise errors.RestError(400, "PGRST100", f"failed to parse select parameter: unknown cast "
                                               f"type {item.cast!r}")
                    expr = sql.SQL("CAST({} AS {})").format(expr, cast)
                name = item.alias or (item.field.path[-1][1] if item.field.path else item.field.name)
                parts.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(name)))
            else:
                parts.append(self.embed(src, table, item, path))
        if not parts:
            raise errors.RestError(400, "PGRST100", "failed to parse select parameter: nothing selected")
        return sql.SQL(", ").join(parts)

    def relationship(self, table: Table, embed: Embed) -> tuple[ForeignKey, bool]:
        """The foreign key joining `table` to the embedded relation; True when it is many-to-one."""
        candidates: list[tuple[ForeignKey, bool]] = []
        for fk in self.catalog.foreign_keys:
            if fk.table == table.name and fk.ref_table == embed.relation:
                candidates.append((fk, True))
            elif fk.table == embed.relation and fk.ref_table == table.name:
                candidates.append((fk, False))
        if embed.hint is not None:
            candidates = [(fk, m2o) for fk, m2o in candidates
                          if embed.hint == fk.name or embed.hint in fk.columns or embed.hint in fk.ref_columns]
        if not candidates:
            raise errors.RestError(400, "PGRST200", f"Could not find a relationship between '{table.name}' and "
                                   f"'{embed.relation}' in the schema cache",
                                   hint="Check the relation name and the foreign key hint (`rel!fkey(...)`).")
        if len(candidates) > 1:
            names = ", ".join(fk.name for fk, _ in candidates)
            raise errors.RestError(300, "PGRST201", f"Could not embed because more than one relationship was found "
                                   f"for '{table.name}' and '{embed.relation}'", details=names,
                                   hint=f"Try changing '{embed.relation}' to one of: "
                                   + ", ".join(f"{embed.relation}!{fk.name}" for fk, _ in candidates))
        return candidates[0]

    def embed(self, src: str, table: Table, embed: Embed, parent_path: str = "") -> sql.Composable:
        target = self.catalog.tables.get(embed.relation)
        if target is None:
            raise errors.RestError(400, "PGRST200", f"Could not find a relationship between '{table.name}' and "
                                   f"'{embed.relation}' in the schema cache")
        fk, many_to_one = self.relationship(table, embed)
        alias = self.alias()
        if many_to_one:
            pairs = zip(fk.ref_columns, fk.columns, strict=True)
        else:
            pairs = zip(fk.columns, fk.ref_columns, strict=True)
        join = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(alias, there), sql.Identifier(src, here)) for there, here in pairs)
        rel = sql.Identifier(SCHEMA, target.name)
        name = embed.alias or embed.relation
        path = f"{parent_path}.{name}" if parent_path else name
        extra = self.embedded.get(path) or EmbedArgs()
        if path in self.embedded:
            self.used_embeds.add(path)
        items = self.select_list(alias, target, embed.items, path)
        cond = sql.SQL(" AND ").join([join, self.where(alias, target, extra.filters)])
        tail = self.order(alias, target, extra.order)
        if extra.limit is not None:
            tail = sql.SQL("{} LIMIT {}").format(tail, self.param(extra.limit))
        if extra.offset is not None:
            tail = sql.SQL("{} OFFSET {}").format(tail, self.param(extra.offset))
        inner = sql.SQL("SELECT {} FROM {} AS {} WHERE {}{}").format(items, rel, sql.Identifier(alias), cond, tail)
        if embed.inner:
            self.inner_joins.append(sql.SQL("EXISTS (SELECT 1 FROM {} AS {} WHERE {})").format(
                rel, sql.Identifier(alias), cond))
        if many_to_one:
            expr = sql.SQL("(SELECT row_to_json(_e) FROM ({} LIMIT 1) _e)").format(inner)
        else:
            expr = sql.SQL("coalesce((SELECT json_agg(_e) FROM ({}) _e), '[]'::json)").format(inner)
        return sql.SQL("{} AS {}").format(expr, sql.Identifier(name))


# CSV as PostgREST builds it: a header of the first row's keys, then each row's record text without
# its parentheses (PostgreSQL's record output already quotes and doubles quotes CSV-style)
_CSV_BODY = sql.SQL(
    "coalesce((SELECT string_agg(k, ',') FROM json_object_keys(json_agg(_t) -> 0) AS k) || E'\\n', '')"
    " || coalesce(string_agg(substring(_t::text, 2, length(_t::text) - 2), E'\\n'), '')")


def wrap(source: sql.Composable, *, total: sql.Composable | None = None, single: bool = False,
         strip_nulls: bool = False, csv: bool = False) -> sql.Composed:
    """Turn a row source into `(total, row count, body text)`, the JSON (or CSV) built by PostgreSQL."""
    body: sql.Composable = sql.SQL("(json_agg(_t) -> 0)") if single else sql.SQL("coalesce(json_agg(_t), '[]'::json)")
    if strip_nulls:
        body = sql.SQL("json_strip_nulls({})").format(body)
    if csv:
        body = _CSV_BODY
    return sql.SQL("SELECT {} AS total, count(_t) AS n, {}::text AS body FROM ({}) _t").format(
        total if total is not None else sql.SQL("NULL::bigint"), body, source)


def insert_source(builder: Builder, table: Table, columns: tuple[str, ...], body_json: str,
                  missing_default: bool) -> sql.Composable:
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
        exprs.append(sql.SQL("CASE WHEN (_j.obj::jsonb) ? {} THEN {} ELSE {} END").format(
            builder.param(name, sql.SQL("text")), sql.Identifier("_r", name), default))
    return sql.SQL("SELECT {} FROM json_array_elements({}) AS _j(obj), "
                   "LATERAL json_populate_record(NULL::{}, _j.obj) AS _r").format(
        sql.SQL(", ").join(exprs), body, rel)


def function_call(builder: Builder, fn: Function, args: dict[str, Any], args_json: str) -> tuple[
        sql.Composable, sql.Composable]:
    """`(FROM clause prefix, call expression)` calling fn with named args from a JSON object."""
    used = [a for a in fn.args if a.name in args]
    name = sql.Identifier(SCHEMA, fn.name)
    if not used:
        return sql.SQL(""), sql.SQL("{}()").format(name)
    record = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(a.name), trusted(a.type)) for a in used)
    source = sql.SQL("json_to_record({}) AS _a({})").format(builder.param(args_json, sql.SQL("json")), record)
    call = sql.SQL("{}({})").format(name, sql.SQL(", ").join(
        sql.SQL("{} => {}").format(sql.Identifier(a.name), sql.Identifier("_a", a.name)) for a in used))
    return source, call
