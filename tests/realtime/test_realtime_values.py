"""values.py rewrites PostgreSQL text output into JSON without a round trip: it must equal `to_jsonb` exactly."""

from __future__ import annotations

import psycopg
import pytest

from localbase.realtime.values import convert_row

SAMPLES = [
    ("uuid", "'6f1c2d3e-0000-4000-8000-00000000abcd'"),
    ("text", "'héllo \"quoted\" \\\\ tab\t'"),
    ("varchar", "'v'"),
    ("int2", "-7"),
    ("int4", "2147483647"),
    ("int8", "'-9223372036854775808'"),
    ("numeric", "12345678901234567890"),
    ("bool", "true"),
    ("bool", "false"),
    ("timestamptz", "'2026-11-24 01:02:03.456789+00'"),
    ("timestamptz", "'2026-11-24 01:02:03+05:30'"),
    ("timestamptz", "'2026-01-01 00:00:00.1-08'"),
    ("timestamp", "'2026-11-24 01:02:03.5'"),
    ("date", "'2026-02-28'"),
    ("jsonb", """'{"b": [1, 2.5, null], "a": {"x": "y"}}'"""),
]


@pytest.mark.parametrize(("typname", "literal"), SAMPLES)
def test_fast_conversion_equals_to_jsonb(db: psycopg.Connection, typname: str, literal: str) -> None:
    db.execute("set timezone = 'UTC'")
    row = db.execute(f"select ({literal}::{typname})::text, to_jsonb({literal}::{typname})").fetchone()
    assert row is not None
    text, expected = row
    assert convert_row(["c"], [typname], [text]) == {"c": expected}


def test_unusual_values_fall_back_to_postgres() -> None:
    assert convert_row(["c"], ["numeric"], ["1.50"]) is None  # exact decimals stay PostgreSQL's
    assert convert_row(["c"], ["timestamptz"], ["infinity"]) is None
    assert convert_row(["c"], ["int4[]"], ["{1,2}"]) is None
    assert convert_row(["c"], ["bool"], ["maybe"]) is None
    assert convert_row(["t", "f"], ["bool", "bool"], ["t", "f"]) == {"t": True, "f": False}  # pgoutput's form
    assert convert_row(["a", "b"], ["text", "int4"], [None, "3"]) == {"a": None, "b": 3}
