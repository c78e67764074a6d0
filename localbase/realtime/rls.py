"""Row-level security for postgres_changes: is this row visible to this subscriber, as walrus decides.

Supabase Realtime ("walrus", `realtime.apply_rls`) checks each INSERT/UPDATE once per subscriber: inside one
transaction it sets `role` and `request.jwt.claims` to the subscriber's, then asks whether the changed row,
looked up by primary key, is visible. We do the same, in one round trip per batch: a generated plpgsql
function per published table (`localbase_realtime.visible_<oid>`) takes the batch's changed keys once and one
group per distinct subscriber identity (role + claims) naming the keys that identity needs answered (all of
them, the common case, is sent as `null`, so the arguments grow with identities + rows rather than their
product). Per group it switches role and claims with transaction-local `set_config` and runs one static
statement for all of the group's keys (`... where pk = any(keys)`; a batch of one row asked by every identity,
the usual case, is a plain `exists (... where pk = key)`, ~20 µs less per identity than the key-mapping
statement), whose plan plpgsql caches; PostgreSQL re-plans when the role changes because RLS plans depend on
the user, and re-evaluates the policies' `auth.uid()` init-plans on every execution, so each group sees its
own claims. Visible keys come back with RETURN NEXT (RETURN QUERY would be one more statement per group). One
statement per identity, never one statement for many claims: a single statement would compute `auth.uid()`
once and apply it to every row. The function returns `(group, key)` pairs, so an answer can only ever count
for the identity that was asked.

A check that errors (no grant, a policy function raising) counts as invisible: the batch is first
run without a subtransaction per check (fast), and only if it fails again with one (safe).

Column privileges decide which columns a role receives (`columns` and the record keys), and a role
without SELECT on a table receives nothing from it (DELETEs included), so `anon` sees nothing of
our tables. Both are cached for a few seconds.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql

SCHEMA = "localbase_realtime"
PRIVILEGE_TTL = 5.0
MIN_CHECKS_PER_WORKER = 25  # identity groups; below this a second backend costs more than it saves

SETUP_SQL = f"""
create schema if not exists {SCHEMA};
revoke all on schema {SCHEMA} from public;
drop function if exists {SCHEMA}.poll(name, integer, text);  -- the slot is streamed now (walstream.py)
-- The walsender can send a commit before the committing backend has left the proc array, i.e. before other
-- snapshots see the transaction; a check in that window would read the row's previous version (a ticket still
-- assigned to the agent it was just taken from) and approve the new one. Every check first waits here until
-- each of its transactions (32-bit xids from the WAL) is visible to a fresh snapshot.
create or replace function {SCHEMA}.await_visible(xids bigint[]) returns void
language plpgsql as $fn$
declare
  snap pg_snapshot;
  top bigint;
  waited integer := 0;
begin
  loop
    snap := pg_current_snapshot();  -- a new snapshot per statement: the function is volatile, read committed
    top := pg_snapshot_xmax(snap)::text::bigint;
    if not exists (
      select 1 from unnest(xids) x
      cross join lateral (select ((top >> 32) << 32) | x as full_xid) f
      where not pg_visible_in_snapshot(
        (case when f.full_xid >= top then f.full_xid - 4294967296 else f.full_xid end)::text::xid8, snap)
    ) then
      return;
    end if;
    waited := waited + 1;
    if waited > 4000 then  -- ~2 s: never approve against an older row version; the caller fails closed
      raise exception 'realtime: committed transactions not visible after 2 s';
    end if;
    perform pg_sleep(0.0005);
  end loop;
end $fn$;
revoke all on function {SCHEMA}.await_visible(bigint[]) from public;
"""

ALLOWED_ROLES = ("anon", "authenticated", "service_role")


# one answer, `answer(g, k)`: identity group `g` may see the batch's key `k` (a key index is below 2**32: a batch holds
# at most a few tens of thousands of changes); `visible` gives them per check function
Visible = dict[str, set[int]]
ANSWER_SHIFT = 32


def answer(g: int, k: int) -> int:
    """The code `visible` uses for "group `g` may see key `k`"."""
    return (g << ANSWER_SHIFT) | k


@dataclass(slots=True)
class Group:
    """One subscriber identity's question: which of the batch's keys (`rows`: indexes, None = all) may it see."""

    g: int
    role: str
    claims: str  # the claims' JSON text, set as `request.jwt.claims`
    rows: list[int] | None = None

    def json(self) -> str:
        rows = "null" if self.rows is None else json.dumps(self.rows)
        return f'{{"g":{self.g},"role":{_json_string(self.role)},"claims":{_json_string(self.claims)},"rows":{rows}}}'


@functools.lru_cache(maxsize=4096)
def _json_string(text: str) -> str:
    """`text` as a JSON string: a subscriber's claims are asked about on every batch, escaped once."""
    return json.dumps(text)


@dataclass
class Checks:
    """The RLS questions of one batch for one table: its changed rows' keys once, and the identity groups."""

    keys_json: str  # JSON array of primary-key objects; a group's `rows` index into it
    groups: list[Group]
    xids: list[int]  # the transactions of those rows: checked once visible to a fresh snapshot (`await_visible`)

    @property
    def has_keys(self) -> bool:
        return self.keys_json not in ("", "[]")

    def groups_json(self) -> str:
        return "[" + ",".join(group.json() for group in self.groups) + "]"


@dataclass(frozen=True)
class TableAccess:
    can_select: bool
    columns: frozenset[str]


_CHECK_FUNCTION = """
drop function if exists {fn}(jsonb, boolean);  -- an older localbase's signatures
drop function if exists {fn}(jsonb, jsonb, boolean);
drop function if exists {fn}(bigint[], jsonb, jsonb, boolean);
create function {fn}(xids bigint[], keys jsonb, groups jsonb, safe boolean) returns table (g integer, k integer)
language plpgsql
-- plan each statement once per role: custom plans would re-plan (RLS included) for every identity
set plan_cache_mode = force_generic_plan
as $fn$
declare
  grp jsonb;
  wanted integer[];  -- the keys (indexes) this group asks about; null: all of them
  found integer[];
  pk jsonb;
  r integer;
  {keydecl}
  current_role_name text := '';
begin
  perform {schema}.await_visible(xids);  -- as the capture's own role, before any switch
  {keysetup}
  for grp in select value from jsonb_array_elements(groups) loop
    if grp->>'role' <> current_role_name then  -- groups come sorted by role; switching is the costly part
      current_role_name := grp->>'role';
      perform set_config('role', current_role_name, true);
    end if;
    perform set_config('request.jwt.claims', grp->>'claims', true);
    if jsonb_typeof(grp->'rows') = 'array' then
      wanted := array(select jsonb_array_elements_text(grp->'rows')::integer);
    else  -- this identity is asked about every key
      wanted := null;
    end if;
    found := null;
    if safe then
      begin
        {body}
      exception when others then
        found := null;
      end;
    else
      {body}
    end if;
    if found is not null then  -- RETURN NEXT per visible key: no statement of its own, unlike RETURN QUERY
      g := (grp->>'g')::integer;
      foreach r in array found loop
        k := r;
        return next;
      end loop;
    end if;
  end loop;
  perform set_config('role', 'none', true);
  perform set_config('request.jwt.claims', '', true);
end $fn$;
revoke all on function {fn}(bigint[], jsonb, jsonb, boolean) from public;
"""

# one key column: the keys are typed once per call; per identity one index lookup for all of its rows, `= any(array)`
# keeping the index usable under RLS (a join against the keys would apply non-leakproof operators to the table first)
_SINGLE_KEY_SETUP = """allkeys := array(select (e->>{lit})::{typ} from jsonb_array_elements(keys) e);
  onekey := allkeys[1];
  nkeys := coalesce(array_length(allkeys, 1), 0);"""
_SINGLE_KEY_BODY = """
        -- the RLS statement is the inner select, as the subscriber; the outer part only maps keys to their indexes
        if wanted is null and nkeys = 1 then  -- the usual batch (one change, every identity asks): one plain lookup
          if exists (select 1 from {tbl} t where t.{col} = onekey) then
            found := '{{0}}';
          end if;
        elsif wanted is null then
          found := array(select i - 1 from generate_subscripts(allkeys, 1) i
                         where allkeys[i] in (select t.{col} from {tbl} t where t.{col} = any(allkeys)));
        else
          keyvals := array(select allkeys[i + 1] from unnest(wanted) i);
          found := array(select i from unnest(wanted) i
                         where allkeys[i + 1] in (select t.{col} from {tbl} t where t.{col} = any(keyvals)));
        end if;
"""

_MULTI_KEY_BODY = """
        if wanted is null then
          wanted := array(select generate_series(0, jsonb_array_length(keys) - 1));
        end if;
        foreach r in array wanted loop
          pk := keys->r;
          if exists(select 1 from {tbl} t where {where}) then
            found := array_append(found, r);
          end if;
        end loop;
"""


def check_function_name(relation_oid: int) -> str:
    return f"visible_{relation_oid}"


def check_function(relation_oid: int, schema: str, table: str, keys: Sequence[tuple[str, str]]) -> str:
    """A plpgsql function returning which of the given rows each subscriber identity may see.

    Per identity (role + claims) one statement looks up all of that identity's rows in the batch: the
    policies' `auth.uid()`-style init-plans are computed once per statement, which is right because
    the claims are fixed for it, and never shared between identities. The SQL is static, so plpgsql
    caches its plans per role. `keys` are the primary key's (column, SQL type) from the catalog.
    The text is composed once per distinct argument set (~0.2 ms each time otherwise; the capture asks
    for it on every batch to see whether the table's key changed).
    """
    return _check_function(relation_oid, schema, table, tuple(keys))


@functools.lru_cache(maxsize=256)
def _check_function(relation_oid: int, schema: str, table: str, keys: tuple[tuple[str, str], ...]) -> str:
    tbl = sql.Identifier(schema, table)
    keydecl: sql.Composable = sql.SQL("")
    keysetup: sql.Composable = sql.SQL("")
    if len(keys) == 1:
        ((name, type_sql),) = keys
        typ = sql.SQL(type_sql)
        body = sql.SQL(_SINGLE_KEY_BODY).format(col=sql.Identifier(name), tbl=tbl)
        keydecl = sql.SQL("allkeys {typ}[]; keyvals {typ}[]; onekey {typ}; nkeys integer;").format(typ=typ)
        keysetup = sql.SQL(_SINGLE_KEY_SETUP).format(lit=sql.Literal(name), typ=typ)
    else:
        where = sql.SQL(" and ").join(
            sql.SQL("t.{c} = (pk->>{lit})::{typ}").format(
                c=sql.Identifier(name), lit=sql.Literal(name), typ=sql.SQL(type_sql)
            )
            for name, type_sql in keys
        )
        body = sql.SQL(_MULTI_KEY_BODY).format(tbl=tbl, where=where)
    return (
        sql.SQL(_CHECK_FUNCTION)
        .format(
            fn=sql.Identifier(SCHEMA, check_function_name(relation_oid)),
            keydecl=keydecl,
            keysetup=keysetup,
            body=body,
            schema=sql.Identifier(SCHEMA),
        )
        .as_string(None)
    )


async def run_setup(conn: AsyncConnection[Any], script: str, attempts: int = 3) -> None:
    """Run an idempotent setup script, again if it collides with another one.

    The capture (SETUP_SQL) and the first private join (authorization.AUTHORIZE_SQL) both create the schema when the
    stack starts; two `create schema if not exists` at once make the later one fail with a duplicate key (and two
    grants on it with "tuple concurrently updated"). Run again, the script finds what the other one committed.
    """
    for attempt in range(attempts):
        try:
            await conn.execute(script.encode())  # no parameters: one simple-protocol script, one transaction
            return
        except psycopg.Error:
            if attempt == attempts - 1:
                raise
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                await conn.rollback()


class RlsChecker:
    """Batched visibility checks and cached table/column privileges, on the capture's connection."""

    def __init__(self) -> None:
        self._access: dict[tuple[str, int], tuple[float, TableAccess]] = {}
        self._rls: dict[int, tuple[float, bool]] = {}
        self._functions: dict[str, str] = {}  # function name -> the definition it was created with

    async def setup(self, conn: AsyncConnection[Any]) -> None:
        await run_setup(conn, SETUP_SQL)
        self._functions.clear()

    async def ensure_function(self, conn: AsyncConnection[Any], name: str, definition: str) -> None:
        if self._functions.get(name) != definition:
            # no parameters: one simple-protocol query, so the drop and the create commit together
            await conn.execute(definition.encode())
            self._functions[name] = definition

    async def access(self, conn: AsyncConnection[Any], role: str, relation_oid: int) -> TableAccess:
        now = time.monotonic()
        cached = self._access.get((role, relation_oid))
        if cached and now - cached[0] < PRIVILEGE_TTL:
            return cached[1]
        cur = await conn.execute(
            "select a.attname::text from pg_attribute a where a.attrelid = %s and a.attnum > 0"
            " and not a.attisdropped and has_column_privilege(%s, a.attrelid, a.attnum, 'SELECT')",
            (relation_oid, role),
        )
        columns = frozenset(str(r[0]) for r in await cur.fetchall())
        cur = await conn.execute("select has_table_privilege(%s, %s::oid, 'SELECT')", (role, relation_oid))
        row = await cur.fetchone()
        result = TableAccess(bool(row and row[0]) or bool(columns), columns)
        self._access[(role, relation_oid)] = (now, result)
        return result

    async def rls_enabled(self, conn: AsyncConnection[Any], relation_oid: int) -> bool:
        now = time.monotonic()
        cached = self._rls.get(relation_oid)
        if cached and now - cached[0] < PRIVILEGE_TTL:
            return cached[1]
        cur = await conn.execute("select relrowsecurity from pg_class where oid = %s", (relation_oid,))
        row = await cur.fetchone()
        enabled = bool(row[0]) if row else True  # unknown relation: treat as protected
        self._rls[relation_oid] = (now, enabled)
        return enabled

    async def visible(self, connections: list[AsyncConnection[Any]], checks: dict[str, Checks]) -> Visible:
        """Per check function, `answer(g, k)` for each identity group `g` that may see key `k`; errors hide rows, never
        show them.

        `checks` maps a check function (see `check_function`) to its `Checks`: the batch's keys of that table, once,
        and the identity groups, each naming the keys it asks about (`rows`, or None for all of them). Many groups
        are split across `connections` and run in parallel backends (the policies, not Python, are the cost).
        """
        checks = {fn: batch for fn, batch in checks.items() if batch.groups and batch.has_keys}
        total = sum(len(batch.groups) for batch in checks.values())
        if not total:
            return {}
        parts = max(1, min(len(connections), total // MIN_CHECKS_PER_WORKER))
        shares: list[dict[str, Checks]] = [{} for _ in range(parts)]
        for fn, batch in checks.items():
            # sorted by role: the function switches role only when it changes
            groups = sorted(batch.groups, key=lambda grp: grp.role)
            for i in range(parts):
                chunk = groups[i::parts]
                if chunk:
                    shares[i][fn] = Checks(batch.keys_json, chunk, batch.xids)
        if parts == 1:  # one backend (every batch below MIN_CHECKS_PER_WORKER identities): no task to gather
            return await self._visible_on(connections[0], shares[0])
        results = await asyncio.gather(
            *(self._visible_on(conn, share) for conn, share in zip(connections, shares, strict=False) if share)
        )
        merged: Visible = {}
        for result in results:
            for fn, codes in result.items():
                known = merged.get(fn)
                if known is None:
                    merged[fn] = codes
                else:
                    known |= codes
        return merged

    @staticmethod
    async def _visible_on(conn: AsyncConnection[Any], checks: dict[str, Checks]) -> Visible:
        fns = tuple(checks)
        args: list[Any] = []
        for fn in fns:
            args += [checks[fn].xids, checks[fn].keys_json, checks[fn].groups_json()]
        # autocommit: each call is one transaction, so the local role and claims end with it
        try:
            cur = await conn.execute(_visible_query(fns, False), args)
        except Exception:  # any failure retries check by check, failing closed
            cur = await conn.execute(_visible_query(fns, True), args)
        # one row per function: its answers as one int8 array, which psycopg parses in C (a row per answer cost a
        # tuple and a Python set entry each, ~15 % of the stack's time at 500 subscribers)
        return {fns[n]: set(codes) for n, codes in await cur.fetchall()}


@functools.lru_cache(maxsize=256)
def _visible_query(fns: tuple[str, ...], safe: bool) -> str:
    """The statement asking `fns` (check functions) in one round trip; composed once per set of tables."""
    return (
        sql.SQL(" union all ")
        .join(
            sql.SQL(
                "select {}, array(select (g::int8 << {}) | k from {}(%s::int8[], %s::jsonb, %s::jsonb, {}))::int8[]"
            ).format(sql.Literal(n), sql.Literal(ANSWER_SHIFT), sql.Identifier(SCHEMA, fn), sql.Literal(safe))
            for n, fn in enumerate(fns)
        )
        .as_string(None)
    )
