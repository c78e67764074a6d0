"""One batch of changes handed to each socket in one call, and the batch's RLS questions, per identity.

At 500 subscribers the capture's per-frame path (a put, a direct write, the protocol's checks, one transport write,
per frame) was the largest part of the stack's time: the capture now gathers a batch's frames per socket and puts
them with `Outbox.put_many`. These tests pin that a socket gets its frames in one call and in commit order (two
channels of one socket included; a burst past the direct bound: test_realtime_send_many.py), and that the
RLS questions ask each identity only the keys it needs; and that which bindings a table's changes go to is worked out
once while the channels stay (it was per batch: 18 % of the stack's time at 500 subscribers) and again when they
change (pure logic: the checker's answers are stood in for; the
real checker runs in test_realtime_rls_batches.py and test_realtime_check_paths.py).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest

from localbase.realtime import rls
from localbase.realtime.capture import Capture, Event
from localbase.realtime.filters import parse_binding
from localbase.realtime.hub import Channel, Hub, Outbox
from localbase.realtime.pgoutput import Change, Column, Relation, Transaction

pytestmark = pytest.mark.timeout(30)

RELATION = Relation(7, "public", "messages", "d", (Column("id", 25, True), Column("content", 25, False)))


def _capture(hub: Hub) -> Capture:
    capture = Capture("postgresql://unused", hub)
    capture._types[25] = ("text", "text")  # known: no catalog query
    now = time.monotonic()
    capture.rls._rls[7] = (now, True)
    capture.rls._access[("authenticated", 7)] = (now, rls.TableAccess(True, frozenset({"id", "content"})))
    return capture


def _event(row_id: str, targets: list[tuple[Channel, list[int]]], kind: str = "INSERT") -> Event:
    record = {"id": row_id, "content": f"text of {row_id}"}
    stamp = dt.datetime.now(dt.UTC).isoformat()
    return Event(RELATION, Change(kind, 7, [row_id, record["content"]]), stamp, record, {}, targets, xid=1)


def _ids(frames: list[str | bytes]) -> list[tuple[str, str]]:
    """(topic, row id) of each postgres_changes frame."""
    parsed = [json.loads(frame) for frame in frames]
    return [(p["topic"], p["payload"]["data"]["record"]["id"]) for p in parsed]


async def test_a_batch_reaches_each_socket_in_one_call_in_commit_order() -> None:
    hub = Hub()
    capture = _capture(hub)
    calls: dict[str, list[list[str | bytes]]] = {"a": [], "b": []}
    sockets = {}
    for name, made in calls.items():
        outbox = Outbox("1.0.0", lambda reason: None)
        outbox.direct = lambda frames, made=made: made.append(list(frames)) or True  # type: ignore[misc]
        sockets[name] = outbox
    claims = {"sub": "u", "role": "authenticated"}
    first = Channel(sockets["a"], "realtime:one", "1", claims)  # two channels on socket a
    second = Channel(sockets["a"], "realtime:two", "1", claims)
    other = Channel(sockets["b"], "realtime:one", "1", claims)
    hub.pg_channels.update({first, second, other})
    events = [
        _event("m1", [(first, [1]), (second, [2]), (other, [1])]),
        _event("m2", [(second, [2]), (first, [1])]),
        _event("m3", [(first, [1]), (other, [1])]),
    ]
    await capture._deliver(None, events)  # type: ignore[arg-type]
    assert len(calls["a"]) == 1 and len(calls["b"]) == 1  # one call per socket, not one per frame
    assert _ids(calls["a"][0]) == [
        ("realtime:one", "m1"),
        ("realtime:two", "m1"),
        ("realtime:two", "m2"),
        ("realtime:one", "m2"),
        ("realtime:one", "m3"),
    ]
    assert _ids(calls["b"][0]) == [("realtime:one", "m1"), ("realtime:one", "m3")]


async def test_a_socket_that_left_during_the_check_gets_nothing_and_a_refused_batch_queues_in_order() -> None:
    hub = Hub()
    capture = _capture(hub)
    refused = Outbox("1.0.0", lambda reason: None)
    refused.direct = lambda frames: False  # a paused transport: nothing written
    claims = {"sub": "u", "role": "authenticated"}
    paused = Channel(refused, "realtime:one", "1", claims)
    gone = Channel(Outbox("1.0.0", lambda reason: None), "realtime:one", "1", claims)
    gone.outbox.direct = lambda frames: pytest.fail("a channel that left got a frame")  # type: ignore[assignment]
    hub.pg_channels.add(paused)  # `gone` is no longer a postgres_changes channel
    await capture._deliver(None, [_event("m1", [(paused, [1]), (gone, [1])]), _event("m2", [(paused, [1])])])  # type: ignore[arg-type]
    queued = [refused.queue.get_nowait() for _ in range(refused.queue.qsize())]
    assert _ids(queued) == [("realtime:one", "m1"), ("realtime:one", "m2")]  # type: ignore[arg-type]


async def test_each_identity_is_asked_only_the_keys_its_channels_need_and_gets_only_its_answers(
    monkeypatch: Any,
) -> None:
    """Three changes (the third updates the first's row again): identity A is on every one (twice on the first, by
    two channels), B only on the first, C on the third. A is asked every key (`rows` null), B and C only theirs,
    each once; only the (group, key) pairs the checker returns let a channel through."""
    hub = Hub()
    capture = _capture(hub)

    def channel(sub: str) -> Channel:
        made = Channel(Outbox("1.0.0", lambda reason: None), "realtime:one", "1", {"sub": sub, "role": "authenticated"})
        hub.pg_channels.add(made)
        return made

    a, a_again, b, c = channel("a"), channel("a"), channel("b"), channel("c")
    asked: list[dict[str, rls.Checks]] = []

    async def ensure_function(*args: Any) -> None:
        return None

    async def visible(connections: Any, checks: dict[str, rls.Checks]) -> rls.Visible:
        asked.append(checks)
        ((fn, batch),) = checks.items()
        group = {json.loads(g.claims)["sub"]: g.g for g in batch.groups}
        return {fn: {rls.answer(group["a"], 0), rls.answer(group["c"], 0)}}  # A sees m1 only, B nothing, C m1

    monkeypatch.setattr(capture.rls, "ensure_function", ensure_function)
    monkeypatch.setattr(capture.rls, "visible", visible)
    events = [
        _event("m1", [(a, [1]), (a_again, [1]), (b, [1])]),
        _event("m2", [(a, [1])]),
        _event("m1", [(a, [1]), (c, [1])], kind="UPDATE"),
    ]
    await capture._authorize(None, events)  # type: ignore[arg-type]
    ((batch,),) = [list(checks.values()) for checks in asked]
    assert json.loads(batch.keys_json) == [{"id": "m1"}, {"id": "m2"}]  # m1 once
    rows = {json.loads(g.claims)["sub"]: g.rows for g in batch.groups}
    assert rows == {"a": None, "b": [0], "c": [0]}
    assert sorted(g.g for g in batch.groups) == [0, 1, 2]
    assert [[ch for ch, _ in event.targets] for event in events] == [[a, a_again], [], [a, c]]


async def test_the_matching_plan_is_kept_while_the_channels_stay_and_remade_when_they_change(monkeypatch: Any) -> None:
    """Which bindings a table's changes go to is worked out once, not per batch; a join, a leave or a rebinding of
    the postgres_changes channels (any change to the hub's set) makes it again before the next batch."""
    hub = Hub()
    capture = _capture(hub)
    capture.decoder.relations[7] = RELATION
    built: list[int] = []
    real_index = capture.matcher.index

    def counting() -> Any:
        built.append(1)
        return real_index()

    monkeypatch.setattr(capture.matcher, "index", counting)

    def joined(sub: str, raw_filter: str | None = None) -> Channel:
        raw: dict[str, Any] = {"event": "INSERT", "schema": "public", "table": "messages"}
        if raw_filter is not None:
            raw["filter"] = raw_filter
        binding = parse_binding(raw)
        for cond in binding.conditions:
            cond.set_type("text", list(cond.raw_values))
        made = Channel(Outbox("1.0.0", lambda reason: None), "realtime:one", "1", {"sub": sub, "role": "authenticated"})
        made.bindings.append(binding)
        hub.add(made)
        return made

    def batch(*row_ids: str) -> list[Transaction]:
        now = dt.datetime.now(dt.UTC)
        return [Transaction(1, now, [Change("INSERT", 7, [row_id, "hi"]) for row_id in row_ids])]

    first = joined("a")
    wanted = joined("b", "id=eq.m2")
    for _ in range(3):
        events = await capture._events(None, batch("m1", "m2"))  # type: ignore[arg-type]
        assert [{ch for ch, _ in e.targets} for e in events] == [{first}, {first, wanted}]
    assert len(built) == 1  # three batches, one plan
    late = joined("c")
    events = await capture._events(None, batch("m3"))  # type: ignore[arg-type]
    assert {ch for ch, _ in events[0].targets} == {first, late}
    hub.remove(first)
    events = await capture._events(None, batch("m2"))  # type: ignore[arg-type]
    assert {ch for ch, _ in events[0].targets} == {wanted, late}
    hub.pg_channels.discard(late)  # any change to the set, not only Hub.add/remove
    events = await capture._events(None, batch("m2"))  # type: ignore[arg-type]
    assert [ch for ch, _ in events[0].targets] == [wanted]
    assert len(built) == 4
