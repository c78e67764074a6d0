"""/rest/v1/rpc/<function>: calling a function of schema `public` with named arguments.

POST takes the arguments as a JSON object, GET/HEAD as query parameters (read-only transaction).
PostgreSQL converts them with `json_to_record` typed by the catalog, as PostgREST does. A scalar
result is answered as a JSON scalar, a void one as 204, a set as an array to which select,
filters, order and paging apply.

As in PostgREST 12/13: overloads are told apart by their argument names (two that both fit are
PGRST203, 300); a function with one unnamed `json`/`jsonb` parameter takes the whole JSON body
(`text`, `xml`, `bytea` ones the raw body of that content type); `Prefer: count=exact` counts scalar
and set results alike; `Prefer: handling=strict, max-affected=N` fails with PGRST124 and rolls back
when the function returned more than N rows.
"""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection, sql
from starlette.requests import Request
from starlette.responses import Response

from localbase.context import context
from localbase.rest import errors, grammar, response
from localbase.rest.catalog import Function, SchemaCache
from localbase.rest.query import SCHEMA, Builder, function_call, rendered, trusted, wrap
from localbase.rest.request import env_max_rows, off_loop, parse_args, read_body, reject_constant
from localbase.rest.session import Identity, in_transaction

# the content type each single unnamed parameter type is sent with
_RAW_TYPES = {
    "json": "application/json",
    "jsonb": "application/json",
    "text": "text/plain",
    "xml": "text/xml",
    "bytea": "application/octet-stream",
}


def _signature(fn: Function) -> str:
    return f"{SCHEMA}.{fn.name}(" + ", ".join(f"{a.name} => {a.type}" for a in fn.args) + ")"


def _choose(functions: list[Function], given: set[str] | None, name: str, media: str) -> Function:
    """The one overload these argument names (None: a body that is not an object) can call."""
    fits: list[Function] = []
    if given is not None:
        for fn in functions:
            if fn.single_unnamed is not None:
                continue
            names = {a.name for a in fn.args}
            required = {a.name for a in fn.args if not a.has_default}
            if given <= names and required <= given:
                fits.append(fn)
    if not fits:
        fits = [fn for fn in functions if fn.single_unnamed is not None and _RAW_TYPES[fn.single_unnamed] == media]
    if len(fits) > 1:
        raise errors.RestError(
            300,
            "PGRST203",
            "Could not choose the best candidate function between: " + ", ".join(_signature(fn) for fn in fits),
            hint="Try renaming the parameters or the function itself in the database so "
            "function overloading can be resolved",
        )
    if not fits:
        shown = ", ".join(sorted(given or ()))
        raise errors.RestError(
            404,
            "PGRST202",
            f"Could not find the function {SCHEMA}.{name}({shown}) in the schema cache",
            details="Searched for the function with the given argument names, "
            "but no matches were found in the schema cache.",
            hint=None,
        )
    return fits[0]


def _media(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower() or "application/json"


async def _arguments(request: Request, limit: int) -> tuple[dict[str, Any] | None, bytes]:
    """(the JSON object of named arguments, or None when the body is something else; the raw body)."""
    raw = await read_body(request, limit)
    if _media(request) != "application/json":
        return None, raw
    if not raw.strip():
        return {}, raw
    try:
        body = await off_loop(
            request, lambda: json.loads(raw.decode("utf-8"), parse_constant=reject_constant), body_bytes=len(raw)
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise errors.RestError(400, "PGRST102", "Empty or invalid json", details=str(exc)[:200]) from exc
    return (body if isinstance(body, dict) else None), raw


async def call(request: Request, who: Identity, cache: SchemaCache) -> Response:
    ctx = context(request)
    name = request.path_params["function"]
    accept = response.parse_accept(request)
    prefer = grammar.parse_prefer(request.headers.getlist("prefer"))
    functions = await cache.functions(name)
    read_only = request.method in ("GET", "HEAD")
    arg_names = frozenset(a.name for fn in functions for a in fn.args)
    args = await off_loop(request, lambda: parse_args(request, table_mode=False, arg_names=arg_names))
    values: dict[str, Any] | None
    raw = b""
    if read_only:
        values = dict(args.rpc_args)
    else:
        values, raw = await _arguments(request, ctx.max_body_bytes)
    fn = _choose(
        functions,
        set(values) if values is not None else None,
        name,
        "application/json" if read_only else _media(request),
    )
    catalog = await cache.get()

    def plan() -> tuple[sql.SQL, dict[str, Any], str, int]:
        b = Builder(catalog, embedded=args.embedded)
        source: sql.Composable | None
        call_sql: sql.Composable
        if fn.single_unnamed is not None:
            arg = raw if fn.single_unnamed == "bytea" else raw.decode("utf-8", errors="replace")
            source, call_sql = (
                None,
                sql.SQL("{}({})").format(sql.Identifier(SCHEMA, fn.name), b.param(arg, trusted(fn.single_unnamed))),
            )
        else:
            assert values is not None
            built, call_sql = function_call(b, fn, values, response.dump_json(values))
            source = built if values else None
        from_args = sql.SQL(" FROM {}").format(source) if source is not None else sql.SQL("")

        table = catalog.tables.get(fn.return_table) if fn.return_table else fn.out_table
        query: sql.Composable
        if fn.returns_set and table is not None:
            src = "_s0"
            items, group_by = b.render_pairs(b.select_pairs(src, table, args.select))
            b.check_embeds_used()
            where = sql.SQL(" AND ").join([b.where(src, table, args.filters), *b.inner_joins])
            order = b.order(src, table, args.order)
            limit, offset = args.window(request, env_max_rows())
            lateral = (
                sql.SQL("{}, LATERAL {} AS {}").format(source, call_sql, sql.Identifier(src))
                if source
                else sql.SQL("{} AS {}").format(call_sql, sql.Identifier(src))
            )
            counted = sql.SQL("SELECT 1 FROM {} WHERE {}").format(lateral, where)
            total = sql.SQL("(SELECT count(*) FROM ({}) _c)").format(counted) if prefer.count else None
            page = sql.SQL("SELECT {} FROM {} WHERE {}{}{} LIMIT {} OFFSET {}").format(
                items, lateral, where, group_by, order, b.param(limit), b.param(offset)
            )
            query = wrap(page, total=total, single=accept.single, strip_nulls=accept.strip_nulls, csv=accept.csv)
            kind = "set"
        elif args.filters or args.order:
            raise errors.RestError(
                400, "PGRST100", f"function {name} does not return rows of a table; filters and order cannot apply"
            )
        elif fn.returns_void:
            query = sql.SQL("SELECT NULL, 0, ({})::text{}").format(call_sql, from_args)
            kind = "void"
        elif fn.returns_set:
            rows = sql.SQL("{}, LATERAL {}").format(source, call_sql) if source is not None else call_sql
            query = sql.SQL(
                "SELECT NULL, count(*), coalesce(json_agg(_r.v), '[]'::json)::text FROM {} AS _r(v)"
            ).format(rows)
            kind = "array"
        else:
            query = sql.SQL("SELECT NULL, 1, to_json({})::text{}").format(call_sql, from_args)
            kind = "scalar"

        offset = args.window(request, 1000)[1]
        return rendered(query), b.params, kind, offset

    query, params, kind, offset = await off_loop(request, plan, body_bytes=len(raw))

    async def work(conn: AsyncConnection[Any]) -> Response:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
        assert row is not None
        total, n, body = row
        if prefer.max_affected is not None and prefer.handling_strict and n > prefer.max_affected:
            # raised inside the transaction: whatever the function wrote is rolled back
            raise errors.RestError(
                400,
                "PGRST124",
                "Query result exceeds max-affected preference constraint",
                details=f"The query affects {n} rows",
            )
        if kind == "set":
            return response.read_answer(request, accept, prefer, n=n, body=body, total=total, offset=offset)
        if kind == "void":
            return Response(b"", status_code=204)
        response.check_single(accept, 1 if kind == "scalar" else n)
        content = b"" if request.method == "HEAD" else (body if body is not None else "null").encode()
        headers = {"Content-Range": f"0-{n - 1}/{n}" if n else "*/0"} if prefer.count else {}
        return Response(content, status_code=200, media_type=response.JSON_TYPE, headers=headers)

    return await in_transaction(ctx, request, who, read_only=read_only, work=work)
