"""Routes of /rest/v1: tables (GET/HEAD/POST/PATCH/DELETE) and functions (/rpc/<name>).

Each handler parses the request with `grammar`, checks every name against the schema cache,
builds SQL with `query` and runs it in one transaction via `session`; `response` shapes the answer
(status, Content-Range, single-object checks) as PostgREST does.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection, sql
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from localbase import hops
from localbase.context import StackContext, context
from localbase.rest import errors, grammar, response, rpc
from localbase.rest.catalog import Catalog, SchemaCache, Table
from localbase.rest.query import SCHEMA, Builder, insert_source, rendered, wrap
from localbase.rest.request import ReadArgs, env_max_rows, off_loop, parse_args, read_json
from localbase.rest.session import Identity, identify, in_transaction, require_where

log = logging.getLogger(__name__)


def _cache(request: Request) -> SchemaCache:
    return schema_cache(context(request))


def schema_cache(ctx: StackContext) -> SchemaCache:
    """The stack's schema cache, made on first use."""
    cache = ctx.extras.get("rest.schema_cache")
    if not isinstance(cache, SchemaCache):
        cache = SchemaCache(ctx.admin_pool)
        ctx.extras["rest.schema_cache"] = cache
    return cache


async def _table(request: Request) -> Table:
    name = request.path_params["table"]
    table = await _cache(request).table(name)
    if table is None:
        raise errors.unknown_table(name)
    return table


# errors that a stale schema cache could cause (a migration added a column or a foreign key meanwhile)
_STALE_CODES = frozenset({"42703", "PGRST204", "PGRST200"})


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Every failure becomes a PostgREST error body; a bug is logged and still answered in that shape."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except errors.RestError as exc:
            return exc.response()
        except grammar.GrammarError as exc:
            return errors.RestError(400, exc.code, exc.message, exc.details).response()
        except ClientDisconnect:
            return Response(b"", status_code=400)  # the client left, or the body limit answered 413 already
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return errors.RestError(500, "PGRST000", "Internal error in localbase REST").response()

    return run


@_guarded
async def handle_table(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response(b"", headers={"Allow": "OPTIONS,GET,HEAD,POST,PATCH,DELETE"})
    response.check_profile(request)
    who = identify(context(request), request)
    started = time.monotonic()
    try:
        return await _table_request(request, who)
    except errors.RestError as exc:
        if exc.code not in _STALE_CODES or not await _cache(request).reload_if_changed(started):
            raise
        return await _table_request(request, who)


async def _table_request(request: Request, who: Identity) -> Response:
    table = await _table(request)
    if request.method in ("GET", "HEAD"):
        return await _select(request, who, table)
    if request.method == "POST":
        return await _insert(request, who, table)
    if request.method == "PATCH":
        return await _update(request, who, table)
    if request.method == "DELETE":
        return await _delete(request, who, table)
    if request.method == "PUT":
        return await _insert(request, who, table, put=True)
    raise errors.RestError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")


async def _fetch(conn: AsyncConnection[Any], query: sql.SQL, params: dict[str, Any]) -> tuple[Any, ...]:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def _planned_count(conn: AsyncConnection[Any], source: sql.Composable, params: dict[str, Any]) -> int:
    cur = await conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(source), params)
    row = await cur.fetchone()
    assert row is not None
    plan = row[0]
    return int(plan[0]["Plan"]["Plan Rows"])


async def _select(request: Request, who: Identity, table: Table) -> Response:
    ctx = context(request)
    accept = response.parse_accept(request)
    prefer = grammar.parse_prefer(request.headers.getlist("prefer"))
    catalog = await _cache(request).get()
    max_rows = ctx_max_rows(ctx)

    def plan() -> tuple[sql.SQL, sql.SQL, dict[str, Any], int]:
        args = parse_args(request, table_mode=True)
        b = Builder(catalog, embedded=args.embedded)
        src = "_s0"
        rel = sql.Identifier(SCHEMA, table.name)
        items, group_by = b.render_pairs(b.select_pairs(src, table, args.select))
        b.check_embeds_used()
        where = sql.SQL(" AND ").join([b.where(src, table, args.filters), *b.inner_joins])
        order = b.order(src, table, args.order)
        limit, offset = args.window(request, max_rows)
        counted = sql.SQL("SELECT 1 FROM {} AS {} WHERE {}").format(rel, sql.Identifier(src), where)
        total_sql: sql.Composable | None = None
        if prefer.count in ("exact", "estimated"):
            total_sql = sql.SQL("(SELECT count(*) FROM ({}) _c)").format(counted)
        page = sql.SQL("SELECT {} FROM {} AS {} WHERE {}{}{} LIMIT {} OFFSET {}").format(
            items, rel, sql.Identifier(src), where, group_by, order, b.param(limit), b.param(offset)
        )
        query = wrap(page, total=total_sql, single=accept.single, strip_nulls=accept.strip_nulls, csv=accept.csv)
        return rendered(counted), rendered(query), b.params, offset

    counted, query, params, offset = await off_loop(request, plan)

    async def work(conn: AsyncConnection[Any]) -> Response:
        planned = await _planned_count(conn, counted, params) if prefer.count == "planned" else None
        total, n, body = await _fetch(conn, query, params)
        if prefer.count == "estimated" and total is not None and total > max_rows:
            total = await _planned_count(conn, counted, params)
        total = planned if planned is not None else total
        return response.read_answer(request, accept, prefer, n=n, body=body, total=total, offset=offset)

    return await in_transaction(ctx, request, who, read_only=True, work=work)


def ctx_max_rows(ctx: Any) -> int:
    value = ctx.extras.get("rest.max_rows")
    return int(value) if value is not None else env_max_rows()


def _payload_columns(table: Table, args: ReadArgs, rows: list[dict[str, Any]]) -> tuple[str, ...]:
    if args.columns is not None:
        names = args.columns
    else:
        seen: dict[str, None] = {}
        for row in rows:
            for key in row:
                seen.setdefault(key, None)
        names = tuple(seen)
    for name in names:
        if name not in table.columns:
            raise errors.unknown_payload_column(table.name, name)
    return names


def _insert_query(
    request: Request,
    table: Table,
    catalog: Catalog,
    payload: Any,
    *,
    accept: response.Accept,
    prefer: grammar.Prefer,
    put: bool = False,
) -> tuple[list[dict[str, Any]], sql.SQL, dict[str, Any]]:
    """(the rows, the INSERT ... RETURNING query, its parameters) of a POST."""
    args = parse_args(request, table_mode=True)
    if isinstance(payload, dict):
        rows = [payload]
    elif isinstance(payload, list) and all(isinstance(r, dict) for r in payload):
        rows = payload
    else:
        raise errors.invalid_body("the body must be a JSON object or an array of objects")
    columns = _payload_columns(table, args, rows)
    b = Builder(catalog, embedded=args.embedded)
    rel = sql.Identifier(SCHEMA, table.name)
    src = "_s0"
    source = insert_source(b, table, columns, response.dump_json(rows), prefer.missing_default)
    target = sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns)) if columns else sql.SQL("")
    conflict: sql.Composable = sql.SQL("")
    if prefer.resolution is not None:
        keys = args.on_conflict or table.primary_key
        if not keys:
            raise errors.RestError(400, "PGRST103", f"table {table.name} has no primary key; pass on_conflict")
        for key in keys:
            b.column(table, key)
        key_sql = sql.SQL(", ").join(sql.Identifier(k) for k in keys)
        if prefer.resolution == "merge-duplicates" and columns:
            sets = sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns
            )
            conflict = sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(key_sql, sets)
        else:
            conflict = sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(key_sql)
    returning: sql.Composable
    if prefer.return_ == "representation":
        returning = sql.SQL("{}.*, ({}.xmax::text = '0') AS pgrst_inserted").format(
            sql.Identifier(src), sql.Identifier(src)
        )
    elif prefer.return_ == "headers-only" and table.primary_key:
        returning = sql.SQL(", ").join(sql.Identifier(src, k) for k in table.primary_key)
    elif put:  # PUT answers 201 or 200/204 by whether the row was inserted (ON CONFLICT needs SELECT anyway)
        returning = sql.SQL("({}.xmax::text = '0') AS pgrst_inserted").format(sql.Identifier(src))
    else:  # not xmax: a system column needs SELECT on the table, which an insert-only grant does not give
        returning = sql.SQL("true AS pgrst_inserted")
    statement = sql.SQL("INSERT INTO {} AS {} {} {}{} RETURNING {}").format(
        rel, sql.Identifier(src), target, source, conflict, returning
    )
    query: sql.Composable
    if prefer.return_ == "representation":
        items = b.select_list(src, table, args.select)
        b.check_embeds_used()
        inserted = sql.SQL(", (SELECT count(*) FROM pgrst_source WHERE pgrst_inserted) AS pgrst_inserted")
        query = sql.SQL("WITH pgrst_source AS ({}) SELECT t.*{} FROM ({}) t").format(
            statement,
            inserted,
            wrap(
                sql.SQL("SELECT {} FROM pgrst_source AS {}").format(items, sql.Identifier(src)),
                single=accept.single,
                strip_nulls=accept.strip_nulls,
                csv=accept.csv,
            ),
        )
    elif prefer.return_ == "headers-only" and table.primary_key:
        query = sql.SQL(
            "WITH pgrst_source AS ({}) SELECT NULL::bigint, count(_t), "
            "(SELECT row_to_json(_f)::text FROM pgrst_source _f LIMIT 1), count(_t) "
            "FROM pgrst_source _t"
        ).format(statement)
    else:
        query = sql.SQL(
            "WITH pgrst_source AS ({}) SELECT NULL::bigint, count(_t), NULL::text, "
            "count(_t) FILTER (WHERE _t.pgrst_inserted) FROM pgrst_source _t"
        ).format(statement)
    return rows, rendered(query), b.params


async def _insert(request: Request, who: Identity, table: Table, *, put: bool = False) -> Response:
    """POST (insert, upsert) and PUT (PostgREST's single-row upsert addressed by its primary key)."""
    ctx = context(request)
    accept = response.parse_accept(request)
    prefer = grammar.parse_prefer(request.headers.getlist("prefer"))
    payload = await read_json(request, ctx.max_body_bytes)
    keys = _traced_keys(payload) if hops.enabled() else []
    for key in keys:
        hops.mark("rest_received", key)
    if put:
        payload = _put_row(table, parse_args(request, table_mode=True), payload)
        prefer.resolution = "merge-duplicates"
    catalog = await _cache(request).get()
    rows, query, params = await off_loop(
        request,
        lambda: _insert_query(request, table, catalog, payload, accept=accept, prefer=prefer, put=put),
        body_bytes=_body_size(request),
    )
    merge = prefer.resolution == "merge-duplicates"

    async def work(conn: AsyncConnection[Any]) -> Response:
        if not rows:
            return response.write_answer(request, accept, prefer, n=0, body="[]", status=201, table=table)
        _total, n, body, inserted = await _fetch(conn, query, params)
        response.check_single(accept, n)
        status = 201
        if (put or (merge and prefer.return_ == "representation")) and inserted == 0 and n > 0:
            status = 200  # every row updated an existing one
        return response.write_answer(request, accept, prefer, n=n, body=body, status=status, table=table)

    answer = await in_transaction(ctx, request, who, read_only=False, work=work)
    for key in keys:
        hops.mark("rest_committed", key)
    return answer


def _traced_keys(payload: Any) -> list[str]:
    """The ``id`` of each inserted row, for the hop trace (localbase/hops.py)."""
    rows = payload if isinstance(payload, list) else [payload]
    return [str(row["id"]) for row in rows if isinstance(row, dict) and "id" in row]


def _put_row(table: Table, args: ReadArgs, payload: Any) -> dict[str, Any]:
    """The one row of a PUT, checked as PostgREST does: `eq` filters on exactly the primary key, same values."""
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        raise errors.invalid_body("PUT takes one JSON object")
    if args.limit is not None or args.offset is not None:
        raise errors.RestError(400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT")
    eqs = {
        c.field.name: c
        for c in args.filters
        if isinstance(c, grammar.Condition)
        and c.op == "eq"
        and not c.negate
        and not c.field.path
        and c.modifier is None
    }
    if not table.primary_key or len(eqs) != len(args.filters) or set(eqs) != set(table.primary_key):
        raise errors.RestError(
            405, "PGRST105", "Filters must include all and only primary key columns with 'eq' operators"
        )
    for key in table.primary_key:
        value = payload.get(key)
        shown = json.dumps(value) if not isinstance(value, str) else value
        if key not in payload or shown != eqs[key].value:
            raise errors.RestError(400, "PGRST115", "Payload values do not match URL in primary key column(s)")
    return payload


def _body_size(request: Request) -> int:
    body = getattr(request.state, "rest_body", b"")
    return len(body) if isinstance(body, bytes) else 0


async def _update(request: Request, who: Identity, table: Table) -> Response:
    ctx = context(request)
    accept = response.parse_accept(request)
    prefer = grammar.parse_prefer(request.headers.getlist("prefer"))
    payload = await read_json(request, ctx.max_body_bytes)
    if not isinstance(payload, dict):
        raise errors.invalid_body("the body of an update must be a JSON object")
    catalog = await _cache(request).get()

    def plan() -> tuple[sql.SQL, dict[str, Any], bool]:
        args = parse_args(request, table_mode=True)
        columns = _payload_columns(table, args, [payload])
        require_where("UPDATE", args.filters)
        b = Builder(catalog, embedded=args.embedded)
        src = "_s0"
        rel = sql.Identifier(SCHEMA, table.name)
        where = b.where(src, table, args.filters)
        sets = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Identifier("_r", c)) for c in columns
        )
        body = b.param(response.dump_json(payload), sql.SQL("json"))
        returning = sql.SQL("{}.*").format(sql.Identifier(src)) if prefer.return_ == "representation" else sql.SQL("1")
        statement = sql.SQL(
            "UPDATE {} AS {} SET {} FROM json_populate_record(NULL::{}, {}) AS _r WHERE {} RETURNING {}"
        ).format(rel, sql.Identifier(src), sets, rel, body, where, returning)
        return _mutation_query(b, table, statement, accept=accept, prefer=prefer, args=args), b.params, not columns

    query, params, skip = await off_loop(request, plan, body_bytes=_body_size(request))
    return await _mutate(request, who, table, query, params, accept=accept, prefer=prefer, skip=skip)


async def _delete(request: Request, who: Identity, table: Table) -> Response:
    accept = response.parse_accept(request)
    prefer = grammar.parse_prefer(request.headers.getlist("prefer"))
    catalog = await _cache(request).get()

    def plan() -> tuple[sql.SQL, dict[str, Any]]:
        args = parse_args(request, table_mode=True)
        require_where("DELETE", args.filters)
        b = Builder(catalog, embedded=args.embedded)
        src = "_s0"
        rel = sql.Identifier(SCHEMA, table.name)
        where = b.where(src, table, args.filters)
        returning = sql.SQL("{}.*").format(sql.Identifier(src)) if prefer.return_ == "representation" else sql.SQL("1")
        statement = sql.SQL("DELETE FROM {} AS {} WHERE {} RETURNING {}").format(
            rel, sql.Identifier(src), where, returning
        )
        return _mutation_query(b, table, statement, accept=accept, prefer=prefer, args=args), b.params

    query, params = await off_loop(request, plan)
    return await _mutate(request, who, table, query, params, accept=accept, prefer=prefer, skip=False)


def _mutation_query(
    b: Builder,
    table: Table,
    statement: sql.Composable,
    *,
    accept: response.Accept,
    prefer: grammar.Prefer,
    args: ReadArgs,
) -> sql.SQL:
    src = "_s0"
    source: sql.Composable
    if prefer.return_ == "representation":
        items = b.select_list(src, table, args.select)
        b.check_embeds_used()
        source = sql.SQL("SELECT {} FROM pgrst_source AS {}").format(items, sql.Identifier(src))
    else:
        source = sql.SQL("SELECT 1 FROM pgrst_source")
    return rendered(
        sql.SQL("WITH pgrst_source AS ({}) {}").format(
            statement, wrap(source, single=accept.single, strip_nulls=accept.strip_nulls, csv=accept.csv)
        )
    )


async def _mutate(
    request: Request,
    who: Identity,
    table: Table,
    query: sql.SQL,
    params: dict[str, Any],
    *,
    accept: response.Accept,
    prefer: grammar.Prefer,
    skip: bool,
) -> Response:
    async def work(conn: AsyncConnection[Any]) -> Response:
        if skip:
            return response.write_answer(request, accept, prefer, n=0, body="[]", status=200, table=table)
        _total, n, body = await _fetch(conn, query, params)
        if prefer.max_affected is not None and prefer.handling_strict and n > prefer.max_affected:
            raise errors.RestError(
                400,
                "PGRST124",
                "Query result exceeds max-affected preference constraint",
                details=f"The query affects {n} rows",
            )
        response.check_single(accept, n)
        return response.write_answer(request, accept, prefer, n=n, body=body, status=200, table=table)

    return await in_transaction(context(request), request, who, read_only=False, work=work)


@_guarded
async def handle_rpc(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response(b"", headers={"Allow": "OPTIONS,GET,HEAD,POST"})
    if request.method not in ("GET", "HEAD", "POST"):
        raise errors.RestError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")
    response.check_profile(request)
    who = identify(context(request), request)
    return await rpc.call(request, who, _cache(request))


@_guarded
async def handle_root(request: Request) -> Response:
    """The OpenAPI root is not served; answer clearly rather than with a 404 page."""
    return errors.RestError(404, "PGRST125", "Invalid path specified in request URL").response()


def mount() -> Mount:
    methods = ["GET", "HEAD", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"]  # others: a JSON 405 from us
    return Mount(
        "/rest/v1",
        routes=[
            Route("/rpc/{function}", handle_rpc, methods=methods),
            Route("/{table}", handle_table, methods=methods),
            Route("/", handle_root, methods=methods),
        ],
    )
