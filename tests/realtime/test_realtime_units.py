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


def test_commit_timestamp_is_walrus_s_utc_milliseconds() -> None:
    from localbase.realtime.capture import _commit_timestamp
    from localbase.realtime.pgoutput import Transaction, _timestamp

    for micros in (0, 999, 1000, 123_456, 999_999, 10**15 + 7):
        tx = Transaction(1, _timestamp(micros))
        expected = tx.commit_time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{tx.commit_time.microsecond // 1000:03d}Z"
        assert _commit_timestamp(tx) == expected
    assert _commit_timestamp(Transaction(1, _timestamp(123_456))) == "2000-01-01T00:00:00.123Z"


async def test_a_check_on_one_backend_runs_in_the_caller_s_task_and_many_are_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One backend's share (every batch of fewer than MIN_CHECKS_PER_WORKER identities, e.g. one subscriber) is
    awaited directly, with no task to gather; more identities are still split across the backends."""
    import asyncio

    from localbase.realtime import rls

    ran: list[tuple[object, object, int]] = []

    async def fake(conn: object, checks: dict[str, rls.Checks]) -> rls.Visible:
        ran.append((conn, asyncio.current_task(), sum(len(c.groups) for c in checks.values())))
        return {fn: {rls.answer(g.g, 0) for g in c.groups} for fn, c in checks.items()}

    monkeypatch.setattr(rls.RlsChecker, "_visible_on", staticmethod(fake))
    checker = rls.RlsChecker()
    one = {"visible_1": rls.Checks('[{"id": 1}]', [rls.Group(0, "authenticated", "{}")], [7])}
    assert await checker.visible(["a", "b", "c"], one) == {"visible_1": {rls.answer(0, 0)}}  # type: ignore[arg-type]
    assert ran == [("a", asyncio.current_task(), 1)]
    ran.clear()
    many = [rls.Group(g, "authenticated", f'{{"n":{g}}}') for g in range(3 * rls.MIN_CHECKS_PER_WORKER)]
    seen = await checker.visible(["a", "b", "c"], {"visible_1": rls.Checks('[{"id": 1}]', many, [7])})  # type: ignore[arg-type]
    assert seen == {"visible_1": {rls.answer(g, 0) for g in range(len(many))}}
    assert sorted(conn for conn, _, _ in ran) == ["a", "b", "c"]  # type: ignore[type-var]
    assert all(task is not asyncio.current_task() for _, task, _ in ran)
