"""Resolving postgres_changes bindings against the database when a channel joins.

Checks that the bound tables are in publication `supabase_realtime` (a binding that matches no
published table is reported to the client in a `system` error, as Supabase does, while the join
itself succeeds), that filter columns exist and the subscriber's role may SELECT them (Supabase's
`realtime.subscription_check_filters` answers both with "invalid column for filter"), and casts
filter values to the column types in PostgreSQL, keeping them as PostgreSQL's own JSON for exact
comparisons with change records.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from localbase.realtime.filters import Binding, BindingError

PUBLICATION = "supabase_realtime"


async def published_tables(pool: AsyncConnectionPool) -> set[tuple[str, str]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select schemaname::text, tablename::text from pg_publication_tables where pubname = %s", (PUBLICATION,)
        )
        return {(str(r[0]), str(r[1])) for r in await cur.fetchall()}


def covers(binding: Binding, schema: str, table: str) -> bool:
    return binding.schema in ("*", schema) and binding.table in (None, table)


def unpublished_message(binding: Binding) -> str:
    filters = [f"{c.column}={c.op}" for c in binding.conditions]
    return (
        "Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given "
        f"connect parameters: [event: {binding.event}, schema: {binding.schema}, "
        f"table: {binding.table or '*'}, filters: {filters}] (not in publication {PUBLICATION})"
    )


async def resolve(pool: AsyncConnectionPool, bindings: list[Binding], role: str = "anon") -> list[str]:
    """Type the filters of `bindings` (raises BindingError) and return system error messages, if any."""
    published = await published_tables(pool)
    errors: list[str] = []
    for binding in bindings:
        matched = [t for t in published if covers(binding, *t)]
        if not matched:
            errors.append(unpublished_message(binding))
            continue
        if binding.conditions:
            assert binding.table is not None
            await _type_conditions(pool, binding.schema, binding.table, binding, role)
    return errors


async def _type_conditions(pool: AsyncConnectionPool, schema: str, table: str, binding: Binding, role: str) -> None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select a.attname::text, t.typname::text, format_type(a.atttypid, null) from pg_attribute a"
            " join pg_type t on t.oid = a.atttypid"
            " where a.attrelid = (select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            "                     where n.nspname = %s and c.relname = %s)"
            " and a.attnum > 0 and not a.attisdropped and has_column_privilege(%s, a.attrelid, a.attnum, 'SELECT')",
            (schema, table, role),
        )
        columns = {str(r[0]): (str(r[1]), str(r[2])) for r in await cur.fetchall()}
        for cond in binding.conditions:
            if cond.column not in columns:
                raise BindingError(
                    f"invalid column for filter {cond.column}: no such column in {schema}.{table}"
                    " that this role may read"
                )
            typname, type_sql = columns[cond.column]
            # type_sql comes from the catalog (format_type), never from the client
            query = sql.SQL("select to_jsonb(v::{}) from unnest(%s::text[]) with ordinality u(v, n) order by n")
            try:
                async with conn.transaction():
                    cur = await conn.execute(query.format(sql.SQL(type_sql)), (cond.raw_values,))
                    values: list[Any] = [r[0] for r in await cur.fetchall()]
            except psycopg.Error as exc:
                reason = exc.diag.message_primary or str(exc)
                raise BindingError(f"invalid filter value for {cond.column} ({typname}): {reason}") from None
            cond.set_type(typname, values)
