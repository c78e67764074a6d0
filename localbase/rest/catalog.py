"""The schema cache: tables, columns, keys, foreign keys and functions of schema `public`.

Read from pg_catalog as the superuser (like PostgREST's schema cache) and reloaded when a request
names something unknown, or on `NOTIFY pgrst` as PostgREST does, so a migration applied while the
stack runs is picked up. Views get the foreign and unique keys of the base columns they show (traced
through their rewrite rules), functions of one table row are computed fields or computed
relationships, and `pgrst.*` settings of role `authenticator` are read as PostgREST's in-database
configuration (only `pgrst.db_aggregates_enabled` is used). Every SQL identifier the REST layer emits
comes from here; names from the URL are only looked up in it.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import AsyncConnectionPool

SCHEMA = "public"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(), e.g. "timestamp with time zone", "text[]"; trusted SQL from pg_catalog
    typname: str  # pg_type.typname, e.g. "timestamptz", "tsvector"
    nullable: bool
    default: str | None  # pg_get_expr() of the default (identity: its nextval); trusted SQL from pg_catalog
    generated: bool


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class Table:
    name: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    insertable: bool = True
    unique_keys: list[tuple[str, ...]] = field(default_factory=list)  # primary key and unique constraints
    is_view: bool = False

    def is_unique(self, columns: tuple[str, ...]) -> bool:
        """True when these columns include a whole unique key (so they identify at most one row)."""
        return any(key and set(key) <= set(columns) for key in self.unique_keys)


@dataclass(frozen=True)
class FunctionArg:
    name: str
    type: str
    has_default: bool


@dataclass(frozen=True)
class Function:
    name: str
    args: tuple[FunctionArg, ...]
    returns_set: bool
    return_type: str  # format_type of the return type
    return_table: str | None  # a public table/view whose row type the function returns
    returns_void: bool
    volatile: bool
    out_table: Table | None = None  # the columns of RETURNS TABLE (...) / OUT parameters
    single_unnamed: str | None = None  # `f(json)`: one unnamed json/jsonb/text/xml/bytea parameter, its type


@dataclass(frozen=True)
class RowFunction:
    """A function of one row of `table`: a computed field (scalar result) or a computed relationship."""

    name: str
    table: str
    returns_set: bool
    return_table: str | None  # a public table/view: a computed relationship to it
    to_one: bool  # `returns <table>` or `returns setof <table> rows 1`


@dataclass
class Catalog:
    tables: dict[str, Table] = field(default_factory=dict)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    functions: dict[str, list[Function]] = field(default_factory=dict)
    row_functions: dict[tuple[str, str], RowFunction] = field(default_factory=dict)  # by (table, name)
    aggregates_enabled: bool = False  # PostgREST's db-aggregates-enabled


_TABLES_SQL = """
select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), t.typname, not a.attnotnull,
       coalesce(pg_get_expr(d.adbin, d.adrelid),
                case when a.attidentity <> '' then format('nextval(%%L::regclass)', pg_get_serial_sequence(
                  format('%%I.%%I', n.nspname, c.relname), a.attname)) end),
       a.attgenerated <> '', c.relkind
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
join pg_type t on t.oid = a.atttypid
left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
where n.nspname = %s and c.relkind in ('r', 'v', 'm', 'p', 'f')
order by c.relname, a.attnum
"""

_KEYS_SQL = """
select con.conname, con.contype, c.relname,
       array(select a.attname from unnest(con.conkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i)::text[],
       fc.relname,
       array(select a.attname from unnest(con.confkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.i)::text[]
from pg_constraint con
join pg_class c on c.oid = con.conrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_class fc on fc.oid = con.confrelid
left join pg_namespace fn on fn.oid = fc.relnamespace
where n.nspname = %s and con.contype in ('p', 'u', 'f') and (con.contype <> 'f' or fn.nspname = %s)
"""

# which base-table column each view column shows: the target entries of the view's rewrite rule (its
# `ev_action` node tree), as PostgREST reads them; a target entry counts only where its position and
# name are the view column's (so target entries of subqueries inside the view are not taken for them)
_VIEW_SQL = r"""
select distinct v.relname, va.attname, t.relname, ta.attname
from pg_class v
join pg_namespace vn on vn.oid = v.relnamespace
join pg_rewrite r on r.ev_class = v.oid
cross join lateral regexp_matches(r.ev_action::text,
  ':resno (\d+) :resname ((?:\\.|[^ \\])+) :ressortgroupref \d+ :resorigtbl (\d+) :resorigcol (\d+)', 'g') m
join pg_attribute va on va.attrelid = v.oid and va.attnum = m[1]::int and va.attname = replace(m[2], '\', '')
join pg_class t on t.oid = m[3]::oid and t.oid <> v.oid
join pg_namespace tn on tn.oid = t.relnamespace and tn.nspname = %s
join pg_attribute ta on ta.attrelid = t.oid and ta.attnum = m[4]::int
where vn.nspname = %s and v.relkind in ('v', 'm')
"""

_ROW_FUNCTIONS_SQL = """
select p.proname, c.relname, p.proretset, rc.relname, p.prorows
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_type at on at.oid = p.proargtypes[0]
join pg_class c on c.oid = at.typrelid
join pg_namespace cn on cn.oid = c.relnamespace and cn.nspname = %s
join pg_type rt on rt.oid = p.prorettype
left join pg_class rc on rc.oid = rt.typrelid
  and rc.relnamespace = (select oid from pg_namespace where nspname = %s)
where n.nspname = %s and p.prokind = 'f' and p.pronargs = 1
"""

# PostgREST's in-database configuration: `alter role authenticator set pgrst.db_aggregates_enabled = 'true'`
_CONFIG_SQL = """
select split_part(cfg, '=', 1), substr(cfg, strpos(cfg, '=') + 1)
from pg_db_role_setting s join pg_roles r on r.oid = s.setrole, unnest(s.setconfig) cfg
where r.rolname = 'authenticator' and cfg like 'pgrst.%%'
"""
_SINGLE_PARAM_TYPES = frozenset({"json", "jsonb", "text", "xml", "bytea"})

_FUNCTIONS_SQL = """
select p.proname, coalesce(p.proargnames, '{}'::text[]),
       array(select format_type(t, null) from unnest(p.proargtypes) t)::text[],
       p.pronargdefaults, p.proretset, format_type(p.prorettype, null),
       case when rt.typrelid <> 0 and rn.nspname = %s then rc.relname end,
       p.prorettype = 'void'::regtype, p.provolatile = 'v',
       coalesce(p.proargmodes, '{}'::"char"[])::text[],
       array(select format_type(t, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) t)::text[]
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_type rt on rt.oid = p.prorettype
left join pg_class rc on rc.oid = rt.typrelid
left join pg_namespace rn on rn.oid = rc.relnamespace
where n.nspname = %s and p.prokind = 'f'
"""


async def load(pool: AsyncConnectionPool) -> Catalog:
    """Read the whole schema cache in one round of queries."""
    catalog = Catalog()
    async with pool.connection() as conn:
        cur = await conn.execute(_TABLES_SQL, (SCHEMA,))
        for relname, attname, typ, typname, nullable, default, generated, relkind in await cur.fetchall():
            table = catalog.tables.setdefault(
                relname, Table(relname, {}, (), relkind in ("r", "p", "v", "f"), is_view=relkind in ("v", "m"))
            )
            table.columns[attname] = Column(attname, typ, typname, nullable, default, generated)
        cur = await conn.execute(_KEYS_SQL, (SCHEMA, SCHEMA))
        for conname, contype, relname, cols, frel, fcols in await cur.fetchall():
            if relname not in catalog.tables:
                continue
            if contype in ("p", "u"):
                catalog.tables[relname].unique_keys.append(tuple(cols))
                if contype == "p":
                    catalog.tables[relname].primary_key = tuple(cols)
            elif frel in catalog.tables:
                catalog.foreign_keys.append(ForeignKey(conname, relname, tuple(cols), frel, tuple(fcols)))
        cur = await conn.execute(_FUNCTIONS_SQL, (SCHEMA, SCHEMA))
        for row in await cur.fetchall():
            name, argnames, argtypes, ndefaults, retset, rettype, rettable, void, volatile, modes, alltypes = row
            out_table: Table | None = None
            if any(m not in ("i", "b", "v") for m in modes):
                # OUT/TABLE columns: the rows the function returns, filterable like a table's
                outs = [(a, t) for a, t, m in zip(argnames, alltypes, modes, strict=False) if m in ("o", "t", "b")]
                if outs and all(a for a, _ in outs):
                    out_table = Table(name, {a: Column(a, t, t, True, None, False) for a, t in outs}, ())
                # OUT/TABLE args are mixed with the inputs in proargnames; keep only the inputs
                argnames = [a for a, m in zip(argnames, modes, strict=False) if m in ("i", "b", "v")]
            nargs = len(argtypes)
            if nargs == 1 and not any(argnames[:1]) and argtypes[0] in _SINGLE_PARAM_TYPES:
                catalog.functions.setdefault(name, []).append(
                    Function(name, (), retset, rettype, rettable, void, volatile, out_table, single_unnamed=argtypes[0])
                )
                continue
            if len(argnames) < nargs or any(not a for a in argnames[:nargs]):
                continue  # unnamed arguments cannot be called with named JSON args
            args = tuple(FunctionArg(argnames[i], argtypes[i], i >= nargs - ndefaults) for i in range(nargs))
            catalog.functions.setdefault(name, []).append(
                Function(name, args, retset, rettype, rettable, void, volatile, out_table)
            )
        cur = await conn.execute(_VIEW_SQL, (SCHEMA, SCHEMA))
        _derive_view_keys(catalog, await cur.fetchall())
        cur = await conn.execute(_ROW_FUNCTIONS_SQL, (SCHEMA, SCHEMA, SCHEMA))
        for name, table_name, retset, ret_table, prorows in await cur.fetchall():
            if table_name in catalog.tables:
                to_one = ret_table is not None and (not retset or prorows == 1)
                catalog.row_functions[(table_name, name)] = RowFunction(name, table_name, retset, ret_table, to_one)
        cur = await conn.execute(_CONFIG_SQL)
        config: dict[str, str] = dict(await cur.fetchall())
    flag = os.environ.get("PGRST_DB_AGGREGATES_ENABLED") or config.get("pgrst.db_aggregates_enabled", "")
    catalog.aggregates_enabled = flag.strip().lower() in ("true", "on", "1", "yes")
    return catalog


def _derive_view_keys(catalog: Catalog, shows: list[tuple[str, str, str, str]]) -> None:
    """Give views the foreign and unique keys of the base columns they show (chains of views too)."""
    exposed: dict[str, dict[str, dict[str, str]]] = {}  # view -> base -> base column -> view column
    for view, view_col, base, base_col in shows:
        if view in catalog.tables:
            exposed.setdefault(view, {}).setdefault(base, {}).setdefault(base_col, view_col)

    def showing(base: str, columns: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
        out = [(base, columns)]
        for view, bases in exposed.items():
            mapping = bases.get(base, {})
            if all(c in mapping for c in columns):
                out.append((view, tuple(mapping[c] for c in columns)))
        return out

    seen = {(fk.name, fk.table, fk.ref_table) for fk in catalog.foreign_keys}
    for _ in range(3):  # a view of a view of a table: a few rounds reach the whole chain
        added = False
        for fk in list(catalog.foreign_keys):
            for src, src_cols in showing(fk.table, fk.columns):
                for dst, dst_cols in showing(fk.ref_table, fk.ref_columns):
                    if (fk.name, src, dst) not in seen:
                        seen.add((fk.name, src, dst))
                        catalog.foreign_keys.append(ForeignKey(fk.name, src, src_cols, dst, dst_cols))
                        added = True
        for view, bases in exposed.items():
            for base, mapping in bases.items():
                base_table = catalog.tables.get(base)
                for key in base_table.unique_keys if base_table else []:
                    mapped = tuple(mapping.get(c, "") for c in key)
                    if all(mapped) and mapped not in catalog.tables[view].unique_keys:
                        catalog.tables[view].unique_keys.append(mapped)
                        added = True
        if not added:
            break


class SchemaCache:
    """The current Catalog, reloaded when a lookup misses.

    Reloads are coalesced: a request whose lookup missed reloads only if no reload finished after
    it started, so a burst of requests naming unknown things costs one catalog read, not one each.
    """

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._catalog: Catalog | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Catalog:
        if self._catalog is None:
            await self.reload()
        assert self._catalog is not None
        return self._catalog

    async def reload(self, *, since: float | None = None) -> Catalog:
        """Read the catalog again, unless one was read after `since` (a monotonic time)."""
        async with self._lock:
            if self._catalog is None or since is None or self._loaded_at <= since:
                self._catalog = await load(self._pool)
                self._loaded_at = time.monotonic()
            return self._catalog

    async def reload_if_changed(self, since: float) -> bool:
        """Reload; True when the catalog now differs from the one held before."""
        before = self._catalog
        after = await self.reload(since=since)
        return before is None or after != before

    async def listen(self, db_url: str) -> None:
        """Reload on PostgREST's `NOTIFY pgrst` (payload empty, 'reload schema' or 'reload config'), until cancelled.

        Supabase's docs tell users to send it after changing the schema or `pgrst.*` settings by hand;
        a lost connection (a database restart) is listened again a second later.
        """
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
                    await conn.execute("LISTEN pgrst")
                    async for note in conn.notifies():
                        if note.payload.strip() in ("", "reload schema", "reload config"):
                            await self.reload()
            except psycopg.OperationalError:
                await asyncio.sleep(1)

    async def table(self, name: str) -> Table | None:
        started = time.monotonic()
        catalog = await self.get()
        if name not in catalog.tables:
            catalog = await self.reload(since=started)
        return catalog.tables.get(name)

    async def functions(self, name: str) -> list[Function]:
        started = time.monotonic()
        catalog = await self.get()
        if name not in catalog.functions:
            catalog = await self.reload(since=started)
        return catalog.functions.get(name, [])
