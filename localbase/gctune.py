"""The stack process's cycle collector: what starting up allocated is frozen out of its reach once serving.

Why: the stack is one long-lived Python process that delivers realtime frames between PostgreSQL and the
websockets, and CPython's collector pauses it whole. A full (oldest-generation) collection walks every tracked
object, and after start-up nearly all of them (~53,000 tracked, ~62,000 frozen) are modules, classes, the ASGI app
and the pools, which live until the process exits and are never garbage: a full collection of that heap took 33 ms
(best of 5, load 9). Seen with `gc.callbacks` in the stack around `realtime_latency_100` runs (load ~10): two to
five full collections per run, 84-613 ms each with the run's own objects, collecting nothing; each one stops every
delivery in flight. `gc.freeze()` (CPython's documented tool for exactly this) moves everything alive at that
moment into a permanent generation the collector never walks, so a full collection only walks what was allocated
since (channels, pending events). New garbage is collected as before. The one cost: a start-up object that later
becomes part of a reference cycle that is garbage (say a pooled connection the pool replaces) is never freed; that
is bounded by the start-up set itself, most of which lives until exit anyway.

Done once, right after uvicorn reports it is serving (so the pools, the realtime capture and the routes are in the
frozen set), after one collection that drops start-up garbage (the migrations' work and the like) so it is not
frozen with them.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect start-up garbage, then freeze what is left; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
