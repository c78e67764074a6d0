"""One event's frames assembled once per distinct frame, and the checker's SQL composed once per table.

At 100 subscribers the capture assembled the same ~700-byte postgres_changes text once per channel and
composed the RLS check function's text and the checker's statement on every batch. These tests pin that equal
parts give the one cached text, and that anything that differs (topic, serializer, join_ref, binding ids, data)
still gives each channel exactly its own frame.
"""

from __future__ import annotations

import json
from typing import Any

from localbase.realtime import rls
from localbase.realtime.hub import Channel, Outbox


def _channel(topic: str, vsn: str = "1.0.0", join_ref: str = "1") -> tuple[Channel, list[str | bytes]]:
    outbox = Outbox(vsn, lambda reason: None)
    channel = Channel(outbox, topic, join_ref, {"sub": "u", "role": "authenticated"})
    sent: list[str | bytes] = []
    outbox.put = sent.append  # type: ignore[method-assign]
    return channel, sent


def test_channels_of_one_topic_with_the_same_ids_and_data_share_one_assembled_frame() -> None:
    frames: dict[tuple[str, str, str], str] = {}
    data = json.dumps({"table": "messages", "record": {"id": "r1", "content": "hello"}})
    same = [_channel("realtime:desk") for _ in range(5)]
    for channel, _ in same:
        channel.push_change("[7]", data, frames)
    texts = [sent[0] for _, sent in same]
    assert all(text is texts[0] for text in texts)  # assembled once
    assert json.loads(str(texts[0])) == {
        "topic": "realtime:desk",
        "event": "postgres_changes",
        "payload": {"ids": [7], "data": json.loads(data)},
        "ref": None,
    }


def test_anything_that_differs_gives_the_channel_its_own_frame() -> None:
    frames: dict[tuple[str, str, str], str] = {}
    data = json.dumps({"record": {"id": "r1"}})
    fewer_columns = json.dumps({"record": {}})
    cases = {
        "base": (_channel("realtime:desk"), "[7]", data),
        "other topic": (_channel("realtime:other"), "[7]", data),
        "other ids": (_channel("realtime:desk"), "[8]", data),
        "other data": (_channel("realtime:desk"), "[7]", fewer_columns),
        "v2 ref 1": (_channel("realtime:desk", "2.0.0", "1"), "[7]", data),
        "v2 ref 2": (_channel("realtime:desk", "2.0.0", "2"), "[7]", data),
    }
    for (channel, _), ids, body in cases.values():
        channel.push_change(ids, body, frames)
    got = {name: json.loads(str(sent[0])) for name, ((_, sent), _, _) in cases.items()}
    assert got["base"]["topic"] == "realtime:desk" and got["base"]["payload"]["ids"] == [7]
    assert got["other topic"]["topic"] == "realtime:other"
    assert got["other ids"]["payload"]["ids"] == [8]
    assert got["other data"]["payload"]["data"] == {"record": {}}
    assert got["v2 ref 1"] == ["1", None, "realtime:desk", "postgres_changes", {"ids": [7], "data": json.loads(data)}]
    assert got["v2 ref 2"][0] == "2"
    assert len(frames) == len(cases)


def test_check_function_and_statement_are_composed_once_per_table() -> None:
    first = rls.check_function(4242, "public", "messages", [("id", "uuid")])
    assert rls.check_function(4242, "public", "messages", [("id", "uuid")]) is first
    other = rls.check_function(4242, "public", "messages", [("id", "bigint")])
    assert other is not first and "onekey bigint" in other and "onekey bigint" not in first
    query = rls._visible_query(("visible_1", "visible_2"), False)
    assert rls._visible_query(("visible_1", "visible_2"), False) is query
    assert query.count("%s") == 6 and '"localbase_realtime"."visible_2"' in query and "false" in query
    assert "true" in rls._visible_query(("visible_1",), True)


def test_an_identity_question_carries_its_claims_exactly_escaped_once() -> None:
    claims = json.dumps({"sub": 'x"y\\z', "role": "authenticated", "name": "é\n</script>"})
    group = rls.Group(3, "authenticated", claims, [0, 2])
    assert json.loads(group.json()) == {"g": 3, "role": "authenticated", "claims": claims, "rows": [0, 2]}
    hits = rls._json_string.cache_info().hits
    assert json.loads(rls.Group(4, "authenticated", claims).json())["claims"] == claims
    assert rls._json_string.cache_info().hits >= hits + 2  # role and claims: escaped on the first batch only


async def test_the_hop_trace_stamps_a_frame_queued_before_the_socket_writes_it(monkeypatch: Any) -> None:
    """An idle socket's frame is written during the push (Outbox.direct): `frame_queued` must still come first."""
    import datetime as dt
    import time

    from localbase import hops
    from localbase.realtime.capture import Capture, Event
    from localbase.realtime.hub import Hub
    from localbase.realtime.pgoutput import Change, Column, Relation

    order: list[str] = []
    monkeypatch.setattr(hops, "enabled", lambda: True)
    monkeypatch.setattr(hops, "mark", lambda hop, key, **extra: order.append(hop))
    hub = Hub()
    capture = Capture("postgresql://unused", hub)
    relation = Relation(7, "public", "messages", "d", (Column("id", 25, True), Column("content", 25, False)))
    now = time.monotonic()
    capture.rls._rls[7] = (now, True)
    capture.rls._access[("authenticated", 7)] = (now, rls.TableAccess(True, frozenset({"id", "content"})))
    channel = Channel(Outbox("1.0.0", lambda reason: None), "realtime:desk", "1", {"sub": "u", "role": "authenticated"})
    channel.outbox.direct = lambda frame: order.append("written") or True
    hub.pg_channels.add(channel)
    record = {"id": "m1", "content": "hi"}
    event = Event(
        relation, Change("INSERT", 7, ["m1", "hi"]), dt.datetime.now(dt.UTC).isoformat(), record, {}, [(channel, [1])]
    )
    await capture._deliver(None, [event])  # type: ignore[arg-type]
    assert order == ["frame_queued", "written"]


async def test_one_verdict_per_distinct_filter_and_change_and_each_channel_still_gets_its_own(monkeypatch: Any) -> None:
    """100 channels of one ticket (half with the same `ticket_id=eq.` filter) asked that filter once per change."""
    import datetime as dt

    from localbase.realtime.capture import Capture
    from localbase.realtime.filters import Condition, parse_binding
    from localbase.realtime.hub import Hub
    from localbase.realtime.pgoutput import Change, Column, Relation, Transaction

    calls: list[str] = []
    real_matches = Condition.matches

    def counting(self: Condition, record: dict[str, Any]) -> bool:
        calls.append(self.raw_values[0])
        return real_matches(self, record)

    monkeypatch.setattr(Condition, "matches", counting)
    hub = Hub()
    capture = Capture("postgresql://unused", hub)
    capture._types[25] = ("text", "text")  # known: no catalog query
    relation = Relation(7, "public", "messages", "d", (Column("id", 25, True), Column("ticket_id", 25, False)))
    capture.decoder.relations[7] = relation
    expected: dict[Channel, list[int]] = {}
    for i in range(110):
        raw: dict[str, Any] = {"event": "INSERT", "schema": "public", "table": "messages"}
        if i % 2 == 0 or i >= 100:
            raw["filter"] = "ticket_id=eq.t1" if i < 100 else "ticket_id=eq.t2"  # t2: another ticket's channels
        binding = parse_binding(raw)
        for cond in binding.conditions:
            cond.set_type("text", list(cond.raw_values))
        channel = Channel(Outbox("1.0.0", lambda reason: None), f"realtime:c{i}", "1", {"sub": f"u{i}"})
        channel.bindings.append(binding)
        hub.pg_channels.add(channel)
        if i < 100:
            expected[channel] = [binding.id]
    untyped = parse_binding({"event": "INSERT", "schema": "public", "table": "messages", "filter": "id=eq.m2"})
    untyped.conditions[0].values = ["m2"]  # typed without a key (as an older caller would): asked every time
    odd = Channel(Outbox("1.0.0", lambda reason: None), "realtime:odd", "1", {"sub": "odd"})
    odd.bindings.append(untyped)
    hub.pg_channels.add(odd)
    now = dt.datetime.now(dt.UTC)
    tx = Transaction(1, now, [Change("INSERT", 7, ["m1", "t1"]), Change("INSERT", 7, ["m2", "t2"])])
    events = await capture._events(None, [tx])  # type: ignore[arg-type]
    assert [e.record for e in events] == [{"id": "m1", "ticket_id": "t1"}, {"id": "m2", "ticket_id": "t2"}]
    first, second = ({ch: ids for ch, ids in e.targets} for e in events)
    assert first == expected  # the 50 unfiltered and the 50 filtered on t1; not t2's, not the odd one
    assert len(second) == 50 + 10 + 1 and odd in second  # the unfiltered, t2's ten, and the odd one (id m2)
    # per change: t1's filter once, t2's once, the key-less one every time it is asked
    assert sorted(calls) == sorted(["t1", "t2", "m2"] * 2), calls
