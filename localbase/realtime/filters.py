"""postgres_changes bindings: validation, stable binding ids, and row filters.

A binding is what a client sends in `config.postgres_changes`: `{"event","schema","table","filter"}`.
The join reply echoes it verbatim plus a non-zero integer `id` (clients compare field by field and
unsubscribe on any difference). Filters are `column=op.value` with eq, neq, lt, lte, gt, gte and
`in.(a,b,...)` (at most 100 values); several conditions may be joined by commas outside
parentheses, meaning AND, as current Supabase Realtime accepts.

Filter values are cast by PostgreSQL to the column's type when the channel joins (so a bad value
is a join error, as on Supabase) and kept as the JSON PostgreSQL itself produces for that type;
records arrive as the same typed JSON, so equality is exact. Ordering compares numbers as numbers,
date/time types as datetimes and everything else by code point, which differs from PostgreSQL only
for text under a non-C collation.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

EVENTS = ("INSERT", "UPDATE", "DELETE", "*")
OPERATORS = ("eq", "neq", "lt", "lte", "gt", "gte", "in")
MAX_IN_VALUES = 100
NUMERIC_TYPES = {"int2", "int4", "int8", "float4", "float8", "numeric", "oid"}
TIME_TYPES = {"timestamptz", "timestamp", "date"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


class BindingError(ValueError):
    """A postgres_changes binding the server cannot serve; the message becomes the join error reason."""


@dataclass
class Condition:
    column: str
    op: str
    raw_values: list[str]
    typname: str = ""
    values: list[Any] = field(default_factory=list)  # typed JSON values, filled in by the channel join
    # (column, op, type, typed values as JSON) once typed: conditions with equal keys give every record the same
    # verdict, so the capture asks one of them per change (100 channels of one ticket share one filter)
    key: tuple[str, str, str, str] | None = None

    def set_type(self, typname: str, values: list[Any]) -> None:
        """The column's type and the values PostgreSQL cast to it (the channel join), and the condition's key."""
        self.typname = typname
        self.values = values
        self.key = (self.column, self.op, typname, json.dumps(values, sort_keys=True))

    def matches(self, record: dict[str, Any]) -> bool:
        if self.column not in record:
            return False
        value = record[self.column]
        if self.op == "eq":
            return value is not None and value == self.values[0]
        if self.op == "neq":
            return value is not None and value != self.values[0]
        if self.op == "in":
            return value is not None and value in self.values
        if value is None or self.values[0] is None:
            return False
        left, right = comparable(value, self.typname), comparable(self.values[0], self.typname)
        try:
            if self.op == "lt":
                return bool(left < right)
            if self.op == "lte":
                return bool(left <= right)
            if self.op == "gt":
                return bool(left > right)
            return bool(left >= right)
        except TypeError:
            return False


@dataclass
class Binding:
    """A parsed binding; `raw` is what the client sent and what the join reply echoes."""

    raw: dict[str, Any]
    id: int
    event: str
    schema: str
    table: str | None  # None: every published table of the schema ('*' or absent)
    conditions: list[Condition]

    def wants(self, kind: str) -> bool:
        return self.event in ("*", kind)


def comparable(value: Any, typname: str) -> Any:
    """A Python value ordering like PostgreSQL's for the common types (see module docstring)."""
    if typname in NUMERIC_TYPES and isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            return str(value)
    if typname in TIME_TYPES and isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return value


def binding_id(raw: dict[str, Any]) -> int:
    """A stable, non-zero 31-bit id for a binding (Supabase derives one from the subscription params)."""
    key = "|".join(str(raw.get(k, "")) for k in ("event", "schema", "table", "filter"))
    return (zlib.crc32(key.encode()) & 0x7FFFFFFF) or 1


def _split_conditions(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _parse_in_list(text: str) -> list[str]:
    if not (text.startswith("(") and text.endswith(")")):
        raise BindingError("in filter values must be written in.(a,b,...)")
    inner = text[1:-1]
    values: list[str] = []
    current, quoted, i = "", False, 0
    while i < len(inner):
        ch = inner[i]
        if ch == '"':
            quoted = not quoted
        elif ch == "\\" and quoted and i + 1 < len(inner):
            i += 1
            current += inner[i]
        elif ch == "," and not quoted:
            values.append(current.strip())
            current = ""
        else:
            current += ch
        i += 1
    values.append(current.strip())
    if not values or values == [""]:
        raise BindingError("in filter needs at least one value")
    if len(values) > MAX_IN_VALUES:
        raise BindingError(f"in filter accepts at most {MAX_IN_VALUES} values")
    return values


def parse_condition(text: str) -> Condition:
    column, sep, rest = text.partition("=")
    op, dot, value = rest.partition(".")
    if not sep or not dot or not column:
        raise BindingError(f"invalid filter {text!r}: expected column=op.value")
    if not _IDENT.match(column):
        raise BindingError(f"invalid filter column {column!r}")
    if op not in OPERATORS:
        raise BindingError(f"invalid filter operator {op!r}: use one of {', '.join(OPERATORS)}")
    values = _parse_in_list(value) if op == "in" else [value]
    return Condition(column, op, values)


def parse_binding(raw: Any) -> Binding:
    """Validate one client binding; raises BindingError with a reason the client can show."""
    if not isinstance(raw, dict):
        raise BindingError("each postgres_changes binding must be an object")
    event = raw.get("event")
    if not isinstance(event, str) or event.upper() not in EVENTS:
        raise BindingError(f"invalid postgres_changes event {event!r}: use INSERT, UPDATE, DELETE or *")
    schema = raw.get("schema", "public")
    table = raw.get("table")
    flt = raw.get("filter")
    if not isinstance(schema, str) or not schema:
        raise BindingError("schema must be a non-empty string")
    if table is not None and not isinstance(table, str):
        raise BindingError("table must be a string")
    if flt is not None and not isinstance(flt, str):
        raise BindingError("filter must be a string")
    conditions = [parse_condition(part) for part in _split_conditions(flt)] if flt else []
    if conditions and (table in (None, "", "*") or schema == "*"):
        raise BindingError("a filter needs a specific schema and table")
    return Binding(
        raw=raw,
        id=binding_id(raw),
        event=event.upper(),
        schema=schema,
        table=None if table in (None, "", "*") else table,
        conditions=conditions,
    )
