"""The stack process's cycle collector: what starting up allocated is frozen out of its reach once serving.

Why: the stack is one long-lived Python process that delivers realtime frames between PostgreSQL and the websockets,
and CPython's collector pauses it whole. A full (oldest-generation) collection walks every tracked object, and after
start-up nearly all of them (~53,000 tracked, ~62,000 frozen) are modules, classes, the ASGI app and the pools,
which live until the process exits and are never garbage: a full collection of that heap took 33 ms (best of 5, load
9). Seen with `gc.callbacks` in the stack around `realtime_latency_100` runs (load ~10): two to five full
collections per run, 84-613 ms each with the run's own objects, collecting nothing; each one stops every delivery in
flight. `gc.freeze()` (CPython's documented tool for exactly this) moves everything alive at that moment into a
permanent generation the collector never walks, so a full collection only walks what was allocated since (channels,
pending events). New garbage is collected as before, but garbage in a reference cycle that lived long enough to
reach the oldest generation now waits for the rarer full collection below: long-lived per-connection objects must
not form cycles (an ended realtime session and its socket's protocol are freed by reference counting, see
realtime/session.py's ``_release`` and realtime/coalesce.py's ``connection_lost``). The one cost: a start-up object
that later becomes part of a reference cycle that is garbage (say a pooled connection the pool replaces) is never
freed; that is bounded by the start-up set itself, most of which lives until exit anyway.

Full collections are also made rarer: CPython's default makes one every 10 middle ones (70,000 net allocations of
container objects) whenever the objects waiting to be walked exceed a quarter of what the last full one kept, and
after the freeze that is nearly always; at 20,000 deliveries/s the stack allocates that in well under a second, and
under load, when deliveries queue, every one of them walks the whole queue (three full collections of 120-220 ms in
one 100-subscriber run at load 15, the start-up heap frozen). The third threshold is raised from 10 to 100 (one full
collection per 700,000 allocations); the young generations keep their thresholds, so short-lived cycles are freed as
soon as before, and a cycle that reaches the oldest generation waits at most that much longer. The stack's
collections during a 100-subscriber run (`gc.callbacks`, wall time, load 8-12, 02:15 UTC): start-up frozen only,
42 young / 26 middle / 2 full, 621 ms in all (a full one 132 ms); with this threshold 49 / 14 / 0, 121 ms and 44 /
12 / 0, 137 ms. A young threshold of 10,000 as well (as the sync engine uses while it pulls, sync/bulk_gc.py) made
5-9 collections of up to 23 ms each and no better latencies; not taken.

Done once, right after uvicorn reports it is serving (so the pools, the realtime capture and the routes are in the
frozen set), after one collection that drops start-up garbage (the migrations' work and the like) so it is not
frozen with them.
"""

from __future__ import annotations

import gc

FULL_COLLECTION_EVERY = 100  # middle-generation collections per full one (CPython's default: 10)


def settle() -> int:
    """Collect start-up garbage, freeze what is left, make full collections rarer; returns how many are frozen."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
