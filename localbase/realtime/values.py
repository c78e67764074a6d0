"""PostgreSQL text values to the JSON `to_jsonb` would produce, for the common types, without a round trip.

The capture receives column values in PostgreSQL's text output format (session TimeZone UTC, DateStyle
ISO). For the types below the JSON form is a fixed rewrite of that text, identical to what REST returns
(`to_jsonb`/`json_agg`); anything else, or any value that does not look exactly as expected, returns
`None` from `convert_row` and the caller asks PostgreSQL instead (`text::type` then `to_jsonb`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_INT = re.compile(r"^-?\d+$")
_NUM = re.compile(r"^-?\d+(\.\d+)?$")
_TSTZ = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{2})(:\d{2})?$")
_TS = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Unconvertible(ValueError):
    """A value this module does not rewrite; PostgreSQL converts the row instead."""


def _int(text: str) -> int:
    if not _INT.match(text):
        raise Unconvertible(text)
    return int(text)


def _numeric(text: str) -> int | float:
    # to_jsonb keeps numeric's exact digits; Python floats would not, so only integral values are safe here
    if not _INT.match(text):
        raise Unconvertible(text)
    return int(text)


def _bool(text: str) -> bool:
    if text in ("t", "true"):  # boolout writes t/f; a text cast writes true/false
        return True
    if text in ("f", "false"):
        return False
    raise Unconvertible(text)


def _timestamptz(text: str) -> str:
    m = _TSTZ.match(text)
    if not m:
        raise Unconvertible(text)
    date, time_, hours, minutes = m.groups()
    return f"{date}T{time_}{hours}{minutes or ':00'}"


def _timestamp(text: str) -> str:
    m = _TS.match(text)
    if not m:
        raise Unconvertible(text)
    return f"{m.group(1)}T{m.group(2)}"


def _date(text: str) -> str:
    if not _DATE.match(text):
        raise Unconvertible(text)
    return text


def _jsonb(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise Unconvertible(text) from None


def _text(text: str) -> str:
    return text


CONVERTERS: dict[str, Callable[[str], Any]] = {
    "text": _text,
    "varchar": _text,
    "bpchar": _text,
    "name": _text,
    "uuid": _text,
    "citext": _text,
    "int2": _int,
    "int4": _int,
    "int8": _int,
    "numeric": _numeric,
    "bool": _bool,
    "timestamptz": _timestamptz,
    "timestamp": _timestamp,
    "date": _date,
    "jsonb": _jsonb,
}


def convert_row(names: list[str], typnames: list[str], values: list[Any]) -> dict[str, Any] | None:
    """The row as typed JSON values, or None if any column needs PostgreSQL (None/absent values stay None)."""
    out: dict[str, Any] = {}
    for name, typname, value in zip(names, typnames, values, strict=True):
        if value is None or not isinstance(value, str):
            out[name] = None
            continue
        convert = CONVERTERS.get(typname)
        if convert is None:
            return None
        try:
            out[name] = convert(value)
        except Unconvertible:
            return None
    return out
