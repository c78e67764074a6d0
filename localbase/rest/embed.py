"""Resource embedding as PostgREST 12/13 does it: finding the relationship, then the SQL of the embed.

A name in `select=...,name(...)` is resolved against the schema cache, in this order:
  1. a computed relationship: a function `name(<origin row>)` returning (setof) a table; to-one when
     it returns one row (`returns <table>` or `rows 1`);
  2. a table or view `name` joined by foreign keys, in either direction: many-to-one (object),
     one-to-many (array), one-to-one when the referencing columns are unique (object), many-to-many
     through a join table whose primary key holds both foreign keys (array);
  3. a foreign key column of the origin (`supervisor_id(*)`: many-to-one) or a foreign key constraint
     name (`billing(*)`), as PostgREST allows.
`!hint` narrows candidates to a constraint name, a single foreign key column, or a join table; more
than one candidate left is PGRST201 (300) with PostgREST's details and hint, none is PGRST200.
A self-reference has both directions at once: PostgREST asks for a column target or a computed
relationship there, and so do we.

Each embed becomes correlated scalar subqueries in the parent's select list: `row_to_json` of one
row (to-one) or `json_agg` of the rows (to-many); a spread `...rel(a,b)` lifts the columns into the
parent (to-one) or turns each into a correlated array (to-many, PostgREST 13). Aggregates in a to-one
spread are hoisted as PostgREST's `hoistSpreadAggFunctions` does: the spread gives the input, the root
or the enclosing JSON embed applies the function, grouped by the other lifted columns; in a to-many
spread they are PostgREST's PGRST127.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from psycopg import sql

from localbase.rest import errors
from localbase.rest.catalog import Catalog, ForeignKey, RowFunction, Table
from localbase.rest.grammar import Condition, Field, Logic, OrderTerm
from localbase.rest.request import EmbedArgs
from localbase.rest.select import Aggregate, Embed, SelectColumn, SelectItem

SCHEMA = "public"
Cardinality = Literal["many-to-one", "one-to-many", "one-to-one", "many-to-many", "computed"]
Pair = tuple[sql.Composable, str, bool]  # a select list item: (expression, output name, is an aggregate)


class Builder(Protocol):
    """What an embed needs of the query builder (``query.Builder``, which calls into this module): its
    catalog, fresh aliases and parameters, filters, ordering, select lists and aggregates of the embedded
    table, and the bookkeeping of embeds for the parent query (used ``rel.x=`` parameters, ``!inner``
    joins, null tests, to-one rows to order by). A protocol, so this module does not import ``query``."""

    catalog: Catalog
    inner_joins: list[sql.Composable]
    embedded: dict[str, EmbedArgs]
    used_embeds: set[str]
    embed_exists: dict[tuple[str, str], sql.Composable]
    to_one_rows: dict[tuple[str, str], tuple[sql.Composable, sql.Composable, Table, str]]

    def alias(self) -> str: ...

    def param(self, value: Any, cast: sql.Composable | None = None) -> sql.Composable: ...

    def where(self, src: str, table: Table, nodes: list[Condition | Logic]) -> sql.Composable: ...

    def order(self, src: str, table: Table, terms: tuple[OrderTerm, ...]) -> sql.Composable: ...

    def select_pairs(self, src: str, table: Table, items: tuple[SelectItem, ...], path: str = "") -> list[Pair]: ...

    def render_pairs(self, pairs: list[Pair]) -> tuple[sql.Composable, sql.Composable]: ...

    def aggregate_parts(
        self, src: str, table: Table, item: Aggregate, *, check: bool = True
    ) -> tuple[sql.Composable, Callable[[sql.Composable], sql.Composable]]: ...


@dataclass(frozen=True)
class Relationship:
    cardinality: Cardinality
    target: Table
    to_one: bool
    fk: ForeignKey | None = None  # m2o/o2m/o2o: the key; m2m: junction → origin
    origin_holds_fk: bool = False  # m2o and o2o seen from the referencing side
    junction: Table | None = None
    fk2: ForeignKey | None = None  # m2m: junction → target
    function: RowFunction | None = None

    def describe(self, origin: str) -> dict[str, str]:
        """One entry of PGRST201's details, as PostgREST words it."""
        if self.cardinality == "many-to-many" and self.junction and self.fk and self.fk2:
            rel = (
                f"{self.junction.name} using {self.fk.name}({', '.join(self.fk.columns)}) and "
                f"{self.fk2.name}({', '.join(self.fk2.columns)})"
            )
        elif self.fk is not None:
            rel = (
                f"{self.fk.name} using {self.fk.table}({', '.join(self.fk.columns)}) and "
                f"{self.fk.ref_table}({', '.join(self.fk.ref_columns)})"
            )
        else:
            rel = self.function.name if self.function else ""
        return {"cardinality": self.cardinality, "embedding": f"{origin} with {self.target.name}", "relationship": rel}

    def hint_name(self) -> str:
        if self.junction is not None:
            return self.junction.name
        return self.fk.name if self.fk else ""


def _fk_relationship(catalog: Catalog, origin: Table, fk: ForeignKey, outgoing: bool) -> Relationship | None:
    target = catalog.tables.get(fk.ref_table if outgoing else fk.table)
    if target is None:
        return None
    if outgoing:
        one_to_one = origin.is_unique(fk.columns)
        return Relationship("one-to-one" if one_to_one else "many-to-one", target, True, fk, origin_holds_fk=True)
    if target.is_unique(fk.columns):
        return Relationship("one-to-one", target, True, fk)
    return Relationship("one-to-many", target, False, fk)


def _hint_matches(rel: Relationship, hint: str) -> bool:
    if rel.junction is not None and rel.fk and rel.fk2:
        return hint in (rel.junction.name, rel.fk.name, rel.fk2.name)
    fk = rel.fk
    return fk is not None and (hint == fk.name or fk.columns == (hint,) or fk.ref_columns == (hint,))


def candidates(catalog: Catalog, origin: Table, embed: Embed) -> list[Relationship]:
    """Every relationship the embed's name and hint can mean, before disambiguation."""
    name = embed.relation
    found: list[Relationship] = []
    target = catalog.tables.get(name)
    for fk in catalog.foreign_keys:
        if target is not None:
            if fk.table == origin.name and fk.ref_table == name:
                found.append(_fk_relationship(catalog, origin, fk, outgoing=True))  # type: ignore[arg-type]
            if fk.ref_table == origin.name and fk.table == name:
                found.append(_fk_relationship(catalog, origin, fk, outgoing=False))  # type: ignore[arg-type]
        elif fk.table == origin.name and (fk.columns == (name,) or fk.name == name):
            found.append(_fk_relationship(catalog, origin, fk, outgoing=True))  # type: ignore[arg-type]
        elif fk.ref_table == origin.name and fk.name == name:
            found.append(_fk_relationship(catalog, origin, fk, outgoing=False))  # type: ignore[arg-type]
    if target is not None:
        found.extend(_many_to_many(catalog, origin, target))
    found = [r for r in found if r is not None]
    if embed.hint is not None:
        found = [r for r in found if _hint_matches(r, embed.hint)]
    return found


def _many_to_many(catalog: Catalog, origin: Table, target: Table) -> list[Relationship]:
    out: list[Relationship] = []
    for junction in catalog.tables.values():
        if junction.name in (origin.name, target.name):
            continue
        to_origin = [fk for fk in catalog.foreign_keys if fk.table == junction.name and fk.ref_table == origin.name]
        to_target = [fk for fk in catalog.foreign_keys if fk.table == junction.name and fk.ref_table == target.name]
        for a in to_origin:
            for b in to_target:
                # as PostgREST's schema cache: both keys inside the join table's primary key (a unique
                # constraint does not make a join table)
                if a is not b and set(a.columns + b.columns) <= set(junction.primary_key):
                    out.append(Relationship("many-to-many", target, False, a, junction=junction, fk2=b))
    return out


def resolve(catalog: Catalog, origin: Table, embed: Embed) -> Relationship:
    function = catalog.row_functions.get((origin.name, embed.relation))
    if function is not None and function.return_table in catalog.tables:
        target = catalog.tables[function.return_table]
        return Relationship("computed", target, function.to_one, function=function)
    found = candidates(catalog, origin, embed)
    if not found:
        raise errors.RestError(
            400,
            "PGRST200",
            f"Could not find a relationship between '{origin.name}' and '{embed.relation}' in the schema cache",
            details=f"Searched for a foreign key relationship between '{origin.name}' and "
            f"'{embed.relation}'"
            + (f" using the hint '{embed.hint}'" if embed.hint else "")
            + " in the schema 'public', but no matches were found.",
            hint="Perhaps you meant a different relation or hint; check the schema cache.",
        )
    if len(found) > 1:
        names = ", ".join(f"'{embed.relation}!{r.hint_name()}'" for r in found)
        raise errors.RestError(
            300,
            "PGRST201",
            f"Could not embed because more than one relationship was found for '{origin.name}' and '{embed.relation}'",
            details=[r.describe(origin.name) for r in found],
            hint=f"Try changing '{embed.relation}' to one of the following: {names}. Find the "
            "desired relationship in the 'details' key.",
        )
    return found[0]


def row_of(src: str, table: Table) -> sql.Composable:
    """The origin row as a value of its row type, whatever the source (a table alias or a CTE)."""
    return sql.SQL("ROW({})::{}").format(
        sql.SQL(", ").join(sql.Identifier(src, c) for c in table.columns), sql.Identifier(SCHEMA, table.name)
    )


def _source(
    b: Builder, src: str, origin: Table, rel: Relationship, alias: str
) -> tuple[sql.Composable, sql.Composable]:
    """(FROM items, join condition) that give the related rows of one origin row."""
    a = sql.Identifier(alias)
    if rel.function is not None:
        call = sql.SQL("{}({}) AS {}").format(sql.Identifier(SCHEMA, rel.function.name), row_of(src, origin), a)
        return call, sql.SQL("true")
    target = sql.SQL("{} AS {}").format(sql.Identifier(SCHEMA, rel.target.name), a)
    fk = rel.fk
    assert fk is not None
    if rel.junction is not None and rel.fk2 is not None:
        j = b.alias()
        from_sql = sql.SQL("{} JOIN {} AS {} ON {}").format(
            target,
            sql.Identifier(SCHEMA, rel.junction.name),
            sql.Identifier(j),
            _pairs(j, rel.fk2.columns, alias, rel.fk2.ref_columns),
        )
        return from_sql, _pairs(j, fk.columns, src, fk.ref_columns)
    if rel.origin_holds_fk:
        return target, _pairs(alias, fk.ref_columns, src, fk.columns)
    return target, _pairs(alias, fk.columns, src, fk.ref_columns)


def _pairs(left: str, left_cols: tuple[str, ...], right: str, right_cols: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(left, x), sql.Identifier(right, y))
        for x, y in zip(left_cols, right_cols, strict=True)
    )


Lifted = tuple[sql.Composable, str, "Callable[[sql.Composable], sql.Composable] | None"]  # (value, name, aggregate)


def _prepare(
    b: Builder, src: str, origin: Table, rel: Relationship, embed: Embed, *, parent_path: str
) -> tuple[str, sql.Composable, sql.Composable, str, str, EmbedArgs]:
    """(alias, FROM, condition, output name, path, embedded args) of one embed, with the bookkeeping every
    embed needs: its EXISTS for `rel=is.null` and `!inner`, its row for `order=rel(col)`."""
    alias = b.alias()
    from_sql, join = _source(b, src, origin, rel, alias)
    name = embed.alias or embed.relation
    path = f"{parent_path}.{name}" if parent_path else name
    extra: EmbedArgs = b.embedded.get(path) or EmbedArgs()
    if path in b.embedded:
        b.used_embeds.add(path)
    cond = sql.SQL(" AND ").join([join, b.where(alias, rel.target, extra.filters)])
    exists = sql.SQL("EXISTS (SELECT 1 FROM {} WHERE {})").format(from_sql, cond)
    b.embed_exists[(src, name)] = exists
    if embed.inner:
        b.inner_joins.append(exists)
    if rel.to_one and embed.items:
        b.to_one_rows[(src, name)] = (from_sql, cond, rel.target, alias)
    return alias, from_sql, cond, name, path, extra


def _lift_to_one(
    b: Builder, src: str, origin: Table, rel: Relationship, embed: Embed, *, parent_path: str
) -> list[Lifted]:
    """A to-one spread's values for the level above, as PostgREST 12/13 hoists them: each column as a
    correlated scalar of the one related row (a grouping column up there), each aggregate as its input with
    the function left to apply at the first level that is the root or a JSON embed, through nested to-one
    spreads (`count()`'s input is NULL where no row matched, so it counts matches)."""
    alias, from_sql, cond, _, path, _ = _prepare(b, src, origin, rel, embed, parent_path=parent_path)
    lifted: list[Lifted] = []
    for item in embed.items:
        if isinstance(item, SelectColumn) and item.field == Field("count") and "count" not in rel.target.columns:
            legacy = Aggregate("count", None, item.alias, item.cast)  # `count`: served without the setting
            arg, apply = b.aggregate_parts(alias, rel.target, legacy, check=False)
            lifted.append((arg, item.alias or "count", apply))
        elif isinstance(item, Aggregate):
            arg, apply = b.aggregate_parts(alias, rel.target, item)
            lifted.append((arg, item.alias or item.function, apply))
        elif isinstance(item, Embed) and item.spread and item.items and resolve(b.catalog, rel.target, item).to_one:
            if item.alias:
                raise errors.RestError(
                    400, "PGRST100", "failed to parse select parameter: a spread cannot have an alias"
                )
            inner_rel = resolve(b.catalog, rel.target, item)
            lifted.extend(_lift_to_one(b, alias, rel.target, inner_rel, item, parent_path=path))
        else:
            lifted.extend((e, n, None) for e, n, _ in b.select_pairs(alias, rel.target, (item,), path))
    return [
        (sql.SQL("(SELECT {} FROM {} WHERE {} LIMIT 1)").format(value, from_sql, cond), name, apply)
        for value, name, apply in lifted
    ]


def embed_pairs(b: Builder, src: str, origin: Table, embed: Embed, parent_path: str) -> list[Pair]:
    """The (expression, output name, is aggregate) items one embed adds to its parent's select list."""
    rel = resolve(b.catalog, origin, embed)
    if embed.spread and embed.alias:
        raise errors.RestError(400, "PGRST100", "failed to parse select parameter: a spread cannot have an alias")
    if embed.spread and rel.to_one and embed.items:
        return [
            (apply(value), name, True) if apply else (value, name, False)
            for value, name, apply in _lift_to_one(b, src, origin, rel, embed, parent_path=parent_path)
        ]
    alias, from_sql, cond, name, path, extra = _prepare(b, src, origin, rel, embed, parent_path=parent_path)
    if not embed.items:  # an empty embed: its filters and null tests apply, nothing is output
        return []
    pairs = b.select_pairs(alias, rel.target, embed.items, path)
    if embed.spread and any(agg for _, _, agg in pairs):
        raise errors.RestError(
            400,
            "PGRST127",
            "Feature not implemented",
            details="Aggregates are not implemented for one-to-many or many-to-many spreads.",
        )
    items, group_by = b.render_pairs(pairs)
    tail = b.order(alias, rel.target, extra.order)
    if extra.limit is not None:
        tail = sql.SQL("{} LIMIT {}").format(tail, b.param(extra.limit))
    if extra.offset is not None:
        tail = sql.SQL("{} OFFSET {}").format(tail, b.param(extra.offset))
    inner = sql.SQL("SELECT {} FROM {} WHERE {}{}{}").format(items, from_sql, cond, group_by, tail)
    if embed.spread:  # to-many (PostgREST 13): each column becomes an array
        return [
            (
                sql.SQL("coalesce((SELECT json_agg(_e.{}) FROM ({}) _e), '[]'::json)").format(
                    sql.Identifier(col), inner
                ),
                col,
                False,
            )
            for _, col, _agg in pairs
        ]
    if rel.to_one:
        expr = sql.SQL("(SELECT row_to_json(_e) FROM ({} LIMIT 1) _e)").format(inner)
    else:
        expr = sql.SQL("coalesce((SELECT json_agg(_e) FROM ({}) _e), '[]'::json)").format(inner)
    return [(expr, name, False)]
