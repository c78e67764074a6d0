"""/rest/v1/rpc/<function>: calling a function of schema `public` with named arguments.

POST takes the arguments as a JSON object, GET/HEAD as query parameters (read-only transaction).
PostgreSQL converts them with `json_to_record` typed by the catalog, as PostgREST does. A scalar
result is answered as a JSON scalar, a void one as 204, a set as an array to which select,
filters, order and paging apply.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql
from starlette.requests import Request
from starlette.responses import Response

from localbase.context import context
from localbase.rest import errors, grammar, response
from localbase.rest.catalog import Function, SchemaCache
from localbase.rest.query import SCHEMA, Builder, function_call, wrap
from localbase.rest.request import env_max_rows, parse_args, read_json
from localbase.rest.session import Identity, in_transaction


def _choose(functions: list[Function], given: set[str], name: str) -> Function:
    for fn in functions:
        names = {a.name for a in fn.args}
        required = {a.name for a in fn.args if not a.has_default}
        if given <= names and required <= given:
            return fn
    shown = ", ".join(sorted(given))
    raise errors.RestError(404, "PGRST202", f"Could not find the function {SCHEMA}.{name}({shown}) in the schema cache",
                           details="Searched for the function with the given argument names, but no matches were "
                           "found in the schema cache.", hint=None)


async def call(request: Request, who: Identity, cache: SchemaCache) -> Response:
    ctx = context(request)
    name = request.path_params["function"]
    accept = response.parse_accept(request)
    prefer = grammar.parse_prefer(request.headers.getlist("prefer"))
    functions = await cache.functions(name)
    read_only = request.method in ("GET", "HEAD")
    arg_names = frozenset(a.name for fn in functions for a in fn.args)
    args = parse_args(request, table_mode=False, arg_names=arg_names)
    values: dict[str, Any]
    if read_only:
        values = dict(args.rpc_args)
    else:
        body = await read_json(request, ctx.max_body_bytes, empty={})
        if not isinstance(body, dict):
            raise errors.invalid_body("the arguments of a function call must be a JSON object")
        values = body
    fn = _choose(functions, set(values), name)
    catalog = await cache.get()
    b = Builder(catalog, embedded=args.embedded)
    source, call_sql = function_call(b, fn, values, response.dump_json(values))
    from_args = sql.SQL(" FROM {}").format(source) if values else sql.SQL("")

    table = catalog.tables.get(fn.return_table) if fn.return_table else fn.out_table
    query: sql.Composed
    if fn.returns_set and table is not None:
        src = "_s0"
        items = b.select_list(src, table, args.select)
        b.check_embeds_used()
        where = sql.SQL(" AND ").join([b.where(src, table, args.filters), *b.inner_joins])
        order = b.order(src, table, args.order)
        limit, offset = args.window(request, env_max_rows())
        lateral = sql.SQL("{}, LATERAL {} AS {}").format(source, call_sql, sql.Identifier(src)) if values \
            else sql.SQL("{} AS {}").format(call_sql, sql.Identifier(src))
        counted = sql.SQL("SELECT 1 FROM {} WHERE {}").format(lateral, where)
        total = sql.SQL("(SELECT count(*) FROM ({}) _c)").format(counted) if prefer.count else None
        page = sql.SQL("SELECT {} FROM {} WHERE {}{} LIMIT {} OFFSET {}").format(
            items, lateral, where, order, b.param(limit), b.param(offset))
        query = wrap(page, total=total, single=accept.single, strip_nulls=accept.strip_nulls, csv=accept.csv)
        kind = "set"
    elif args.filters or args.order:
        raise errors.RestError(400, "PGRST100", f"function {name} does not return rows of a table; "
                               "filters and order cannot apply")
    elif fn.returns_void:
        query = sql.SQL("SELECT NULL, 0, ({})::text{}").format(call_sql, from_args)
        kind = "void"
    elif fn.returns_set:
        query = sql.SQL("SELECT NULL, count(*), coalesce(json_agg(_r.v), '[]'::json)::text FROM {} AS _r(v)").format(
            sql.SQL("{}, LATERAL {}").format(source, call_sql) if values else call_sql)
        kind = "array"
    else:
        query = sql.SQL("SELECT NULL, 1, to_json({})::text{}").format(call_sql, from_args)
        kind = "scalar"

    offset = args.window(request, 1000)[1]

    async def work(conn: AsyncConnection[Any]) -> Response:
        cur = await conn.execute(query, b.params)
        row = await cur.fetchone()
        assert row is not None
        total, n, body = row
        if kind == "set":
            return response.read_answer(request, accept, prefer, n=n, body=body, total=total, offset=offset)
        if kind == "void":
            return Response(b"", status_code=204)
        response.check_single(accept, 1 if kind == "scalar" else n)
        content = b"" if request.method == "HEAD" else (body if body is not None else "null").encode()
        return Response(content, status_code=200, media_type=response.JSON_TYPE)

    return await in_transaction(ctx, request, who, read_only=read_only, rollback=prefer.tx_rollback, work=work)
