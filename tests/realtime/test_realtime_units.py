"""Pure parts of realtime: binding parsing, filter matching, presence diffs, the pgoutput decoder."""

from __future__ import annotations

import struct

import pytest

from localbase.realtime.filters import BindingError, binding_id, parse_binding
from localbase.realtime.pgoutput import UNCHANGED, Decoder
from localbase.realtime.presence import PresenceRegistry


def test_binding_is_echoed_verbatim_with_a_stable_nonzero_id() -> None:
    raw = {"event": "INSERT", "schema": "public", "table": "messages", "filter": "ticket_id=eq.abc"}
    binding = parse_binding(raw)
    assert binding.raw is raw and binding.id == binding_id(dict(raw)) != 0
    assert parse_binding({"event": "*", "schema": "public"}).table is None
    assert parse_binding({"event": "UPDATE", "schema": "public", "table": "*"}).table is None


@pytest.mark.parametrize(
    "raw",
    [
        {"event": "TRUNCATE", "schema": "public"},
        {"event": "*", "schema": ""},
        {"event": "*", "schema": "public", "filter": "a=eq.1"},
        {"event": "*", "schema": "public", "table": "t", "filter": "a=like.x"},
        {"event": "*", "schema": "public", "table": "t", "filter": "a;drop=eq.1"},
        {"event": "*", "schema": "public", "table": "t", "filter": "a=in.1,2"},
        "not an object",
    ],
)
def test_bad_bindings_are_refused(raw: object) -> None:
    with pytest.raises(BindingError):
        parse_binding(raw)


def test_filter_matching_with_typed_values() -> None:
    cond = parse_binding({"event": "*", "schema": "public", "table": "t", "filter": 'name=in.(a,"b,c",d)'}).conditions[
        0
    ]
    assert cond.raw_values == ["a", "b,c", "d"]
    cond.values, cond.typname = ["a", "b,c", "d"], "text"
    assert cond.matches({"name": "b,c"}) and not cond.matches({"name": "b"}) and not cond.matches({})
    both = parse_binding({"event": "*", "schema": "public", "table": "t", "filter": "n=gt.5,n=lte.10"}).conditions
    for c in both:
        c.typname, c.values = "int4", [int(c.raw_values[0])]
    assert [all(c.matches({"n": n}) for c in both) for n in (5, 6, 10, 11, None)] == [False, True, True, False, False]
    when = parse_binding({"event": "*", "schema": "public", "table": "t", "filter": "at=lt.x"}).conditions[0]
    when.typname, when.values = "timestamptz", ["2026-01-01T12:00:00+00:00"]
    assert when.matches({"at": "2026-01-01T13:00:00+02:00"}) and not when.matches({"at": "2026-01-01T12:00:00+00:00"})


def test_presence_track_retrack_untrack() -> None:
    reg = PresenceRegistry()
    first = reg.track(1, "realtime:r", "alice", {"v": 1})
    meta = first["joins"]["alice"]["metas"][0]
    assert meta["v"] == 1 and meta["phx_ref"] and first["leaves"] == {}
    again = reg.track(1, "realtime:r", "alice", {"v": 2})
    assert again["leaves"]["alice"]["metas"][0]["phx_ref"] == meta["phx_ref"]
    assert again["joins"]["alice"]["metas"][0]["phx_ref_prev"] == meta["phx_ref"]
    reg.track(2, "realtime:r", "alice", {"v": 3})  # a second device under the same key
    assert len(reg.state("realtime:r")["alice"]["metas"]) == 2
    gone = reg.untrack(1)
    assert gone is not None and gone["leaves"]["alice"]["metas"][0]["v"] == 2
    assert reg.untrack(1) is None
    assert [m["v"] for m in reg.state("realtime:r")["alice"]["metas"]] == [3]


def _tuple(*values: str | None) -> bytes:
    out = struct.pack("!h", len(values))
    for v in values:
        out += b"n" if v is None else b"t" + struct.pack("!i", len(v.encode())) + v.encode()
    return out


def test_pgoutput_decoder() -> None:
    dec = Decoder()
    assert dec.feed(b"B" + struct.pack("!qqI", 100, 0, 7)) is None
    rel = (
        b"R"
        + struct.pack("!I", 42)
        + b"public\0t\0d"
        + struct.pack("!h", 2)
        + b"\x01id\0"
        + struct.pack("!Ii", 23, -1)
        + b"\x00v\0"
        + struct.pack("!Ii", 25, -1)
    )
    assert dec.feed(rel) is None
    dec.feed(b"I" + struct.pack("!I", 42) + b"N" + _tuple("1", "x"))
    dec.feed(b"U" + struct.pack("!I", 42) + b"N" + struct.pack("!h", 2) + b"t" + struct.pack("!i", 1) + b"1u")
    dec.feed(b"D" + struct.pack("!I", 42) + b"K" + _tuple("1", None))
    tx = dec.feed(b"C" + struct.pack("!bqqq", 0, 0, 0, 0))
    assert tx is not None and tx.xid == 7 and tx.commit_time.year == 2000
    assert [c.kind for c in tx.changes] == ["INSERT", "UPDATE", "DELETE"]
    assert tx.changes[0].new == ["1", "x"]
    assert tx.changes[1].new == ["1", UNCHANGED]  # an unchanged TOASTed value is not in the WAL
    assert tx.changes[2].old == ["1", None] and tx.changes[2].old_is_key_only
    assert [c.is_key for c in dec.relations[42].columns] == [True, False]
