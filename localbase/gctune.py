"""The stack process's cycle collector: what starting up allocated is frozen out of its reach once serving.

Why: the stack is one long-lived Python process that delivers realtime frames between PostgreSQL and the
websockets, and CPython's collector pauses it whole. A full (oldest-generation) collection walks every tracked
object, and after start-up most of them are modules, classes, the ASGI app and the pools, which live until the
process exits and are never garbage. Measured with `gc.callbacks` in the stack during `realtime_latency_100`
(load ~10): five full collections in one run, 84-613 ms each, collecting nothing; each one stops every delivery
in flight. `gc.freeze()` (the collector's documented tool for exactly this, CPython >= 3.7) moves everything
alive at that moment into a permanent generation the collector never walks, so a full collection only walks
what was allocated since (channels, pending events). New garbage is collected as before. The one cost: a start-up
object that later becomes part of a reference cycle that is garbage (say a pooled connection the pool replaces) is
never freed; that is bounded by the start-up set itself, most of which lives until exit anyway.
Done once, right after the server reports it is serving (so the
pools, the realtime capture and the routes are in the frozen set), after one collection that drops start-up
garbage (migrations' parse trees and the like) so it is not frozen with them.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect start-up garbage, then freeze what is left; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
