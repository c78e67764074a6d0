"""PostgREST error bodies and HTTP statuses.

Every error answer has exactly the four keys `code`, `details`, `hint`, `message` (supabase-py
validates them with a pydantic model), `code` always a string. PostgreSQL errors keep their
SQLSTATE and texts; the status follows PostgREST's SQLSTATE → HTTP status table
(https://docs.postgrest.org/en/stable/references/errors.html).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from starlette.responses import Response

JSON_TYPE = "application/json; charset=utf-8"


class RestError(Exception):
    """An error answered to the client as PostgREST would."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}
        return Response(json.dumps(body), status_code=self.status, media_type=JSON_TYPE, headers=self.headers)


def status_for_sqlstate(sqlstate: str, role: str) -> int:
    """PostgREST's mapping of a SQLSTATE to an HTTP status; `PTxyz` (a function's `raise sqlstate 'PT401'`) is HTTP
    status xyz, as PostgREST documents for custom statuses."""
    if len(sqlstate) == 5 and sqlstate.startswith("PT") and sqlstate[2:].isdigit() and 100 <= int(sqlstate[2:]) <= 599:
        return int(sqlstate[2:])
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    if sqlstate in ("23505", "23503"):
        return 409
    if sqlstate in ("42P01", "42883"):
        return 404
    if sqlstate.startswith("08"):
        return 503
    if sqlstate in ("53300", "57014"):  # too many connections, statement cancelled
        return 503 if sqlstate == "53300" else 500
    if sqlstate == "40001":  # serialization failure: retryable
        return 409
    return 400


def from_pg(exc: psycopg.Error, role: str) -> RestError:
    diag: Any = exc.diag
    sqlstate = exc.sqlstate or "XX000"
    text = str(exc).strip()
    message = diag.message_primary or (text.splitlines()[0] if text else "database error")
    return RestError(
        status_for_sqlstate(sqlstate, role), sqlstate, message, diag.message_detail, hint=diag.message_hint
    )


def unknown_table(name: str) -> RestError:
    return RestError(404, "PGRST205", f"Could not find the table 'public.{name}' in the schema cache")


def unknown_column(table: str, column: str) -> RestError:
    return RestError(400, "42703", f"column {table}.{column} does not exist")


def unknown_payload_column(table: str, column: str) -> RestError:
    return RestError(400, "PGRST204", f"Could not find the '{column}' column of '{table}' in the schema cache")


def invalid_body(details: str) -> RestError:
    return RestError(400, "PGRST102", "Invalid body", details)
