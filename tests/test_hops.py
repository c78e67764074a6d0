"""The hop trace behind ``e2e_latency``'s per-hop breakdown: ``sync.hops``/``localbase.hops`` write one JSON line per
stamp only when switched on, and ``bench/e2e_hops.py`` takes each hop from the right process and turns the stamps
into consecutive segments (a wrong pick would silently report another process's times)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import e2e_hops
from localbase import hops as stack_hops
from sync import hops


@pytest.mark.parametrize("module", [hops, stack_hops])
def test_marks_go_to_the_file_only_when_the_trace_is_on(
    module: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "hops.jsonl"
    monkeypatch.setattr(module, "_path", None)
    monkeypatch.setattr(module, "_fd", None)
    module.mark("outbox", "m1")  # type: ignore[attr-defined]
    assert not trace.exists() and not module.enabled()  # type: ignore[attr-defined]
    monkeypatch.setattr(module, "_path", str(trace))
    module.mark("outbox", "m1", to="u1")  # type: ignore[attr-defined]
    module.mark("cached", "m1")  # type: ignore[attr-defined]
    os.close(module._fd)  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    me = os.getpid()
    assert [(x["hop"], x["key"], x["pid"]) for x in lines] == [("outbox", "m1", me), ("cached", "m1", me)]
    assert lines[0]["to"] == "u1" and lines[0]["t"] <= lines[1]["t"]


def test_the_breakdown_takes_each_hop_from_its_own_process(tmp_path: Path) -> None:
    agent, customer, stack = 10, 20, 30
    rows = [
        {"hop": "outbox", "key": "m", "t": 1.000, "pid": agent},
        {"hop": "push_sent", "key": "m", "t": 1.010, "pid": agent},
        {"hop": "rest_received", "key": "m", "t": 1.015, "pid": stack},
        {"hop": "frame_queued", "key": "m", "t": 1.020, "pid": stack, "to": "someone-else"},
        {"hop": "frame_queued", "key": "m", "t": 1.030, "pid": stack, "to": "cust"},
        {"hop": "received", "key": "m", "t": 1.031, "pid": agent},  # the agent's own copy: not the customer's
        {"hop": "received", "key": "m", "t": 1.040, "pid": customer},
        {"hop": "cached", "key": "m", "t": 1.045, "pid": customer},
        {"hop": "cached", "key": "other", "t": 1.001, "pid": customer},
    ]
    trace = tmp_path / "hops.jsonl"
    trace.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"cut short')
    lines = e2e_hops.load(trace)
    stamps = e2e_hops.stamps(lines["m"], agent, customer, "cust")
    assert stamps == {
        "outbox": 1.000,
        "push_sent": 1.010,
        "rest_received": 1.015,
        "frame_queued": 1.030,
        "received": 1.040,
        "cached": 1.045,
    }
    table = e2e_hops.breakdown([{"keydown": 0.990, **stamps, "painted": 1.100}])
    assert list(table) == [
        "keydown→outbox",
        "outbox→push_sent",
        "push_sent→rest_received",
        "rest_received→frame_queued",
        "frame_queued→received",
        "received→cached",
        "cached→painted",
    ]
    assert table["frame_queued→received"]["p50"] == pytest.approx(10.0)
    assert table["cached→painted"]["p50"] == pytest.approx(55.0)
