"""Shaping REST answers as PostgREST does: media types, profiles, Content-Range, status codes.

Bodies arrive as JSON text built by PostgreSQL and are passed through untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from localbase.rest import errors, grammar
from localbase.rest.catalog import Table

JSON_TYPE = "application/json; charset=utf-8"
OBJECT_TYPE = "application/vnd.pgrst.object+json; charset=utf-8"
CSV_TYPE = "text/csv; charset=utf-8"


@dataclass(frozen=True)
class Accept:
    single: bool = False
    strip_nulls: bool = False
    csv: bool = False

    @property
    def media_type(self) -> str:
        return CSV_TYPE if self.csv else OBJECT_TYPE if self.single else JSON_TYPE


def parse_accept(request: Request) -> Accept:
    """JSON array (default, `*/*`, none) or single object; anything else is 406 PGRST107."""
    header = request.headers.get("accept", "").strip()
    if not header:
        return Accept()
    for raw in header.split(","):
        media, *params = (p.strip().lower() for p in raw.split(";"))
        strip = "nulls=stripped" in params
        if media == "application/vnd.pgrst.object+json":
            return Accept(single=True, strip_nulls=strip)
        if media in ("application/json", "*/*", "application/*", "application/vnd.pgrst.array+json"):
            return Accept(strip_nulls=strip)
        if media == "text/csv":
            return Accept(csv=True)
    raise errors.RestError(406, "PGRST107", "None of these media types are available: " + header[:200])


def check_profile(request: Request) -> None:
    """Only schema `public` is exposed (Accept-Profile for reads, Content-Profile for writes)."""
    for name in ("accept-profile", "content-profile"):
        value = request.headers.get(name)
        if value is not None and value.strip() != "public":
            raise errors.RestError(
                406,
                "PGRST106",
                "The schema must be one of the following: public",
                details=f"Invalid schema: {value[:100]}",
            )


def check_single(accept: Accept, n: int) -> None:
    if accept.single and n != 1:
        raise errors.RestError(
            406, "PGRST116", "Cannot coerce the result to a single JSON object", details=f"The result contains {n} rows"
        )


def dump_json(value: Any) -> str:
    # ensure_ascii keeps a NUL as the escape \u0000, which PostgreSQL rejects with a clear 22P05
    return json.dumps(value, separators=(",", ":"))


def read_answer(
    request: Request,
    accept: Accept,
    prefer: grammar.Prefer,
    *,
    n: int,
    body: str | None,
    total: int | None,
    offset: int,
) -> Response:
    """GET/HEAD (and set-returning rpc) answer: Content-Range, 206/416, single object."""
    if total is not None and n == 0 and offset > 0 and offset >= total:
        raise errors.RestError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            details=f"An offset of {offset} was requested, but there are only {total} rows.",
            headers={"Content-Range": f"*/{total}"},
        )
    check_single(accept, n)
    shown = "*" if total is None else str(total)
    content_range = f"*/{shown}" if n == 0 else f"{offset}-{offset + n - 1}/{shown}"
    status = 200
    if total is not None and (offset > 0 or offset + n < total):
        status = 206
    headers = {"Content-Range": content_range}
    if prefer.count:
        headers["Preference-Applied"] = f"count={prefer.count}"
    content = b"" if request.method == "HEAD" else (body if body is not None else "[]").encode()
    return Response(content, status_code=status, headers=headers, media_type=accept.media_type)


def write_answer(
    request: Request, accept: Accept, prefer: grammar.Prefer, *, n: int, body: str | None, status: int, table: Table
) -> Response:
    """POST/PATCH/DELETE answer per `Prefer: return=`."""
    headers = {"Content-Range": f"*/{n}" if prefer.count else "*/*"}
    applied = [p for p in prefer.applied if not p.startswith(("count=", "max-affected="))]
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    if prefer.return_ == "representation":
        return Response(
            (body if body is not None else "[]").encode(),
            status_code=status,
            headers=headers,
            media_type=accept.media_type,
        )
    if request.method == "POST" and prefer.return_ == "headers-only" and body:
        row = json.loads(body)
        if isinstance(row, dict) and table.primary_key:
            query = "&".join(f"{quote(k)}=eq.{quote(str(row.get(k)))}" for k in table.primary_key)
            headers["Location"] = f"/{table.name}?{query}"
    return Response(b"", status_code=status if request.method == "POST" or status == 201 else 204, headers=headers)
