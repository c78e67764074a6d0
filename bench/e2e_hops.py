"""The per-hop breakdown of `e2e_latency` (bench/e2e.py): where one message's time goes between the agent's
keypress and the customer's painted bubble.

Every process on the path stamps the message's id at each step into one file (sync/hops.py in the apps,
localbase/hops.py in the stack; the harness turns the trace on for this bench). The browsers' stamps (keydown,
update arrived, DOM insert, paint) come from the bench itself. Per sample each hop's stamp is the first line
with the message's id, that hop's name and the right process (the agent's app, the stack, the customer's app;
the stack's frame stamps are the ones addressed to the customer), and a segment is the time between two
consecutive hops that both have a stamp. All stamps are wall-clock time on one machine (`time.time()`, and
`performance.timeOrigin + now()` in the browsers), so segments are comparable to a fraction of a millisecond.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from bench.harness import median, percentile

Where = Literal["browser", "agent", "stack", "customer"]

# the path, in order: (hop name, the process that stamps it)
PATH: list[tuple[str, Where]] = [
    ("keydown", "browser"),  # the agent's page, just before the Enter keydown
    ("handler", "agent"),  # the composer's send handler in the agent's app (NiceGUI, over its websocket)
    ("outbox", "agent"),  # message row + outbox entry committed to the agent's SQLite cache
    ("push_sent", "agent"),  # the Pusher hands the batch to the REST client
    ("rest_received", "stack"),  # the REST insert handler has the body
    ("rest_committed", "stack"),  # its transaction committed
    ("decoded", "stack"),  # the realtime capture decoded the change from the WAL stream
    ("rls_checked", "stack"),  # RLS asked for every subscriber identity of the batch
    ("frame_queued", "stack"),  # the customer's postgres_changes frame in its socket's queue
    ("frame_written", "stack"),  # ... written to the customer's socket
    ("received", "customer"),  # the customer engine's realtime client parsed it
    ("cached", "customer"),  # in the customer's SQLite cache
    ("drawn", "customer"),  # the customer's app added the bubble (NiceGUI element) to the thread
    ("arrived", "browser"),  # the app's socket.io update with the bubble reached the customer's page
    ("inserted", "browser"),  # the bubble in the customer page's DOM (NiceGUI's update applied by Vue)
    ("painted", "browser"),  # the bubble in a painted frame of the customer's page
]


def load(path: Path) -> dict[str, list[dict[str, object]]]:
    """The trace's lines by key (message id)."""
    by_key: dict[str, list[dict[str, object]]] = {}
    if not path.exists():
        return by_key
    for line in path.read_text().splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed process
        by_key.setdefault(str(item["key"]), []).append(item)
    return by_key


def stamps(lines: Iterable[dict[str, object]], agent_pid: int, customer_pid: int, customer_id: str) -> dict[str, float]:
    """One message's hop stamps (epoch seconds), each the first of its kind from the right process."""
    out: dict[str, float] = {}
    where = dict(PATH)
    for item in lines:
        hop, pid, t = str(item["hop"]), item["pid"], float(str(item["t"]))
        match where.get(hop):
            case "agent" if pid != agent_pid:
                continue
            case "customer" if pid != customer_pid:
                continue
            case "stack" if pid in (agent_pid, customer_pid) or customer_id not in str(item.get("to", customer_id)):
                continue
            case None:
                continue
        if hop not in out or t < out[hop]:
            out[hop] = t
    return out


def breakdown(per_sample: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per segment (``a→b`` of consecutive stamped hops): p50, p95 in ms and how many samples had it."""
    segments: dict[str, list[float]] = {}
    order = [hop for hop, _ in PATH]
    for sample in per_sample:
        present = [hop for hop in order if hop in sample]
        for a, b in itertools.pairwise(present):
            segments.setdefault(f"{a}→{b}", []).append((sample[b] - sample[a]) * 1000)
    return {
        name: {"p50": round(median(xs), 1), "p95": round(percentile(xs, 95), 1), "n": len(xs)}
        for name, xs in segments.items()
    }


def render(label: str, table: dict[str, dict[str, float]]) -> str:
    rows = [f"# e2e hops {label}: segment p50 / p95 ms (samples)"]
    rows += [f"#   {name:<34} {v['p50']:>8} {v['p95']:>8}  ({int(v['n'])})" for name, v in table.items()]
    return "\n".join(rows)
