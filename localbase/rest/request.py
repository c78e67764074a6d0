"""Reading a REST request: its query string split into select/filters/order/paging, and its JSON body.

The body is read with a hard byte limit (413 past it) and parsed strictly (no NaN/Infinity, no
duplicate-free guarantee needed since PostgREST also keeps the last key).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request

from localbase.rest import errors, grammar, select

T = TypeVar("T")


@dataclass
class EmbedArgs:
    """Filters, order and paging of one embedded resource (`messages.order=...`, `messages.limit=5`)."""

    filters: list[grammar.Condition | grammar.Logic] = field(default_factory=list)
    order: tuple[grammar.OrderTerm, ...] = ()
    limit: int | None = None
    offset: int | None = None


@dataclass
class ReadArgs:
    select: tuple[select.SelectItem, ...] = (select.Star(),)
    filters: list[grammar.Condition | grammar.Logic] = field(default_factory=list)
    order: tuple[grammar.OrderTerm, ...] = ()
    limit: int | None = None
    offset: int | None = None
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    rpc_args: dict[str, str] = field(default_factory=dict)
    embedded: dict[str, EmbedArgs] = field(default_factory=dict)  # by path, e.g. "messages" or "t.messages"

    def window(self, request: Request, max_rows: int) -> tuple[int, int]:
        """(limit, offset) from the query string, else the Range header; never more than max_rows."""
        offset = self.offset
        limit = self.limit
        if offset is None and limit is None:
            rng = grammar.parse_range(request.headers.get("range"))
            if rng is not None:
                offset = rng[0]
                limit = rng[1] - rng[0] + 1 if rng[1] is not None else None
        offset = offset or 0
        limit = max_rows if limit is None else min(limit, max_rows)
        return limit, offset


def parse_args(request: Request, *, table_mode: bool, arg_names: frozenset[str] = frozenset()) -> ReadArgs:
    """Split the query string; in rpc mode, parameters named like a function argument are arguments."""
    args = ReadArgs()
    for key, value in request.query_params.multi_items():
        if key == "select":
            args.select = select.parse_select(value)
        elif key == "order":
            args.order = grammar.parse_order(value)
        elif key == "limit":
            args.limit = grammar.parse_nonneg_int(value, "limit")
        elif key == "offset":
            args.offset = grammar.parse_nonneg_int(value, "offset")
        elif key == "columns":
            args.columns = grammar.parse_names(value)
        elif key == "on_conflict":
            args.on_conflict = grammar.parse_names(value)
        elif key in ("or", "and", "not.or", "not.and"):
            args.filters.append(grammar.parse_logic(key, value))
        elif key == "apikey":
            continue
        elif not table_mode and key in arg_names:
            if "\x00" in value:
                raise grammar.GrammarError("Invalid input", "NUL characters are not allowed in the query string")
            args.rpc_args[key] = value
        elif _embedded_key(key):
            path, _, name = key.rpartition(".")
            if path.endswith(".not"):  # messages.not.or=(...)
                path, name = path[:-4], "not." + name
            _embedded(args, path, name, value)
        else:
            args.filters.append(grammar.parse_condition(key, value))
    return args


def _embedded_key(key: str) -> bool:
    """`rel.col`, `rel.order`, `a.b.limit`: a dotted key outside quotes and JSON paths."""
    head = key.split("->", 1)[0]
    return "." in head and not head.startswith('"') and not key.startswith("not.")


def _embedded(args: ReadArgs, path: str, name: str, value: str) -> None:
    target = args.embedded.setdefault(path, EmbedArgs())
    if name == "order":
        target.order = grammar.parse_order(value)
    elif name == "limit":
        target.limit = grammar.parse_nonneg_int(value, "limit")
    elif name == "offset":
        target.offset = grammar.parse_nonneg_int(value, "offset")
    elif name in ("or", "and", "not.or", "not.and"):
        target.filters.append(grammar.parse_logic(name, value))
    else:
        target.filters.append(grammar.parse_condition(name, value))


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_body(request: Request, limit: int) -> bytes:
    cached = getattr(request.state, "rest_body", None)
    if isinstance(cached, bytes):  # a request retried after a schema cache reload
        return cached
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise errors.RestError(
            413, "PGRST413", "Payload Too Large", details=f"the request body is larger than {limit} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.RestError(
                413, "PGRST413", "Payload Too Large", details=f"the request body is larger than {limit} bytes"
            )
        chunks.append(chunk)
    request.state.rest_body = b"".join(chunks)
    return request.state.rest_body  # type: ignore[no-any-return]


async def read_json(request: Request, limit: int, *, empty: Any = None) -> Any:
    """The JSON body; `empty` when there is none (or a 400 if empty is None)."""
    raw = await read_body(request, limit)
    if not raw.strip():
        if empty is not None:
            return empty
        raise errors.invalid_body("Empty or invalid json")
    try:
        return await off_loop(
            request, lambda: json.loads(raw.decode("utf-8"), parse_constant=reject_constant), body_bytes=len(raw)
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise errors.RestError(400, "PGRST102", "Empty or invalid json", details=str(exc)[:200]) from exc


OFFLOAD_QUERY_BYTES = 2048
OFFLOAD_BODY_BYTES = 64 * 1024
# one large request is worked on at a time: threads do not add CPU under the GIL, and every extra
# CPU-bound thread makes the event loop wait longer for the GIL at each I/O step
_HEAVY = asyncio.Semaphore(1)


async def off_loop(request: Request, work: Callable[[], T], *, body_bytes: int = 0) -> T:
    """Run pure CPU work (parsing, composing SQL) in a worker thread when the request is large.

    A 16 KiB query string of conditions costs ~0.3 s of parsing and composing; on the event loop that
    would stall every other request (issue 10). Small requests stay on the loop, where a thread hop
    would cost more than the work.
    """
    if len(request.scope.get("query_string", b"")) < OFFLOAD_QUERY_BYTES and body_bytes < OFFLOAD_BODY_BYTES:
        return work()
    async with _HEAVY:
        return await asyncio.to_thread(work)


def env_max_rows() -> int:
    """PostgREST's `db-max-rows` (env PGRST_DB_MAX_ROWS; Supabase's "Max rows" setting), 1000 by default.
    It caps tables and set-returning functions alike; a stack can behave like a project that lowered it,
    so clients are tested against short pages."""
    raw = os.environ.get("PGRST_DB_MAX_ROWS", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1000
