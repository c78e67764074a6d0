"""Row-level security for postgres_changes: is this row visible to this subscriber, as walrus decides.

Supabase Realtime ("walrus", `realtime.apply_rls`) checks each INSERT/UPDATE once per subscriber:
inside one transaction it sets `role` and `request.jwt.claims` to the subscriber's, then asks
whether the changed row, looked up by primary key, is visible. We do the same, in one round trip
per poll for every (change, subscriber identity) pair: a generated plpgsql function per published
table (`localbase_realtime.visible_<oid>`) loops over the checks, switching role and claims with
transaction-local `set_config`, and runs static SQL (`select exists(... where pk = ...)`) whose
plan plpgsql caches; PostgreSQL re-plans when the role changes because RLS plans depend on the
user, and re-evaluates the policies' `auth.uid()` init-plans on every execution, so each check sees
its own claims. One query per check, never one query for many claims: a single statement would
compute `auth.uid()` once and apply it to every row. Identical identities (same role and claims)
are checked once per change.

A check that errors (no grant, a policy function raising) counts as invisible: the batch is first
run without a subtransaction per check (fast), and only if it fails again with one (safe).

Column privileges decide which columns a role receives (`columns` and the record keys), and a role
without SELECT on a table receives nothing from it (DELETEs included), so `anon` sees nothing of
our tables. Both are cached for a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

SCHEMA = "localbase_realtime"
PRIVILEGE_TTL = 5.0
MIN_CHECKS_PER_WORKER = 25  # identity groups; below this a second backend costs more than it saves

SETUP_SQL = f"""
create schema if not exists {SCHEMA};
revoke all on schema {SCHEMA} from public;
drop function if exists {SCHEMA}.poll(name, integer, text);  -- the slot is streamed now (walstream.py)
"""

ALLOWED_ROLES = ("anon", "authenticated", "service_role")


@dataclass(frozen=True)
class TableAccess:
    can_select: bool
    columns: frozenset[str]


_CHECK_FUNCTION = """
drop function if exists {fn}(jsonb, boolean);  -- an older localbase may have left another signature
create function {fn}(groups jsonb, safe boolean) returns setof integer
language plpgsql
-- plan each statement once per role: custom plans would re-plan (RLS included) for every identity
set plan_cache_mode = force_generic_plan
as $fn$
declare
  grp jsonb;
  item jsonb;
  pk jsonb;
  found integer[];
  keyvals {keytype}[];
  seen {keytype}[];
  current_role_name text := '';
begin
  for grp in select value from jsonb_array_elements(groups) loop
    if grp->>'role' <> current_role_name then  -- groups come sorted by role; switching is the costly part
      current_role_name := grp->>'role';
      perform set_config('role', current_role_name, true);
    end if;
    perform set_config('request.jwt.claims', grp->>'claims', true);
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
    if found is not null then
      return query select unnest(found);
    end if;
  end loop;
  perform set_config('role', 'none', true);
  perform set_config('request.jwt.claims', '', true);
end $fn$;
revoke all on function {fn}(jsonb, boolean) from public;
"""

# one key column: one index lookup for all of the identity's rows; `= any(array)` keeps the index usable
# under RLS (a join against the items would apply non-leakproof jsonb operators to the table first)
_SINGLE_KEY_BODY = """
        keyvals := array(select (e->'pk'->>{lit})::{typ} from jsonb_array_elements(grp->'items') e);
        seen := array(select t.{col} from {tbl} t where t.{col} = any(keyvals));
        select array_agg((e->>'n')::integer) into found from jsonb_array_elements(grp->'items') e
        where (e->'pk'->>{lit})::{typ} = any(seen);
"""

_MULTI_KEY_BODY = """
        for item in select value from jsonb_array_elements(grp->'items') loop
          pk := item->'pk';
          if exists(select 1 from {tbl} t where {where}) then
            found := array_append(found, (item->>'n')::integer);
          end if;
        end loop;
"""


def check_function_name(relation_oid: int) -> str:
    return f"visible_{relation_oid}"


def check_function(relation_oid: int, schema: str, table: str, keys: list[tuple[str, str]]) -> str:
    """A plpgsql function returning which of the given rows each subscriber identity may see.

    Per identity (role + claims) one statement looks up all of that identity's rows in the batch: the
    policies' `auth.uid()`-style init-plans are computed once per statement, which is right because
    the claims are fixed for it, and never shared between identities. The SQL is static, so plpgsql
    caches its plans per role. `keys` are the primary key's (column, SQL type) from the catalog.
    """
    tbl = sql.Identifier(schema, table)
    if len(keys) == 1:
        ((name, type_sql),) = keys
        body = sql.SQL(_SINGLE_KEY_BODY).format(
            lit=sql.Literal(name), typ=sql.SQL(type_sql), col=sql.Identifier(name), tbl=tbl
        )
        keytype = sql.SQL(type_sql)
    else:
        where = sql.SQL(" and ").join(
            sql.SQL("t.{c} = (pk->>{lit})::{typ}").format(
                c=sql.Identifier(name), lit=sql.Literal(name), typ=sql.SQL(type_sql)
            )
            for name, type_sql in keys
        )
        body = sql.SQL(_MULTI_KEY_BODY).format(tbl=tbl, where=where)
        keytype = sql.SQL("text")
    return (
        sql.SQL(_CHECK_FUNCTION)
        .format(
            fn=sql.Identifier(SCHEMA, check_function_name(relation_oid)),
            keytype=keytype,
            body=body,
        )
        .as_string(None)
    )


class RlsChecker:
    """Batched visibility checks and cached table/column privileges, on the capture's connection."""

    def __init__(self) -> None:
        self._access: dict[tuple[str, int], tuple[float, TableAccess]] = {}
        self._rls: dict[int, tuple[float, bool]] = {}
        self._functions: dict[str, str] = {}  # function name -> the definition it was created with

    async def setup(self, conn: AsyncConnection[Any]) -> None:
        await conn.execute(SETUP_SQL)
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

    async def visible(
        self, connections: list[AsyncConnection[Any]], checks: dict[str, list[dict[str, Any]]]
    ) -> set[int]:
        """The `n` of every check whose row is visible; errors make a check invisible, never visible.

        `checks` maps a check function (see `check_function`) to its identity groups
        `{"role", "claims", "items": [{"n", "pk"}]}`. Many groups are split across `connections` and
        run in parallel backends (the policies, not Python, are the cost).
        """
        checks = {fn: batch for fn, batch in checks.items() if batch}
        total = sum(len(batch) for batch in checks.values())
        if not total:
            return set()
        parts = max(1, min(len(connections), total // MIN_CHECKS_PER_WORKER))
        shares: list[dict[str, list[dict[str, Any]]]] = [{} for _ in range(parts)]
        for fn, batch in checks.items():
            for i in range(parts):
                chunk = batch[i::parts]
                if chunk:
                    shares[i][fn] = chunk
        results = await asyncio.gather(
            *(self._visible_on(conn, share) for conn, share in zip(connections, shares, strict=False) if share)
        )
        return set().union(*results)

    @staticmethod
    async def _visible_on(conn: AsyncConnection[Any], checks: dict[str, list[dict[str, Any]]]) -> set[int]:
        def query(safe: bool) -> sql.Composed:
            return sql.SQL(" union all ").join(
                sql.SQL("select * from {}(%s::jsonb, {})").format(sql.Identifier(SCHEMA, fn), sql.Literal(safe))
                for fn in checks
            )

        # sorted by role: the function switches role only when it changes
        args = [json.dumps(sorted(batch, key=lambda c: str(c["role"]))) for batch in checks.values()]
        # autocommit: each call is one transaction, so the local role and claims end with it
        try:
            cur = await conn.execute(query(False), args)
        except Exception:  # any failure retries check by check, failing closed
            cur = await conn.execute(query(True), args)
        return {int(r[0]) for r in await cur.fetchall()}
