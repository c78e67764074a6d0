"""Hop trace: wall-clock stamps of one message at each step of its way through the app and the sync engine.

Off unless the process starts with ``SUPPORTCHAT_HOP_TRACE=<file>``; then ``mark(hop, key)`` appends one JSON
line ``{"hop", "key", "t", "pid"}`` (``t``: ``time.time()``, the clock a browser's ``performance.timeOrigin +
performance.now()`` also follows) to that file. Several processes (the two apps, the stack, the benchmark)
append to one file: each line is one ``write`` on a descriptor opened with ``O_APPEND``, so lines never
interleave. ``bench/e2e.py`` joins the lines by message id into the per-hop breakdown of ``e2e_latency``; the
stack's own stamps come from ``localbase/hops.py`` (localbase imports nothing of ours, so it has its copy).

Hand-written rather than OpenTelemetry: the question is only "how long between these two points, across five
processes on one machine", which wall-clock lines in one file answer with no collector, exporter or
context propagation through the wire protocols. Off, ``mark`` costs one test of a module global.
"""

from __future__ import annotations

import json
import os
import time

ENV = "SUPPORTCHAT_HOP_TRACE"

_fd: int | None = None
_path = os.environ.get(ENV) or None


def enabled() -> bool:
    return _path is not None


def mark(hop: str, key: str, at: float | None = None, **extra: str) -> None:
    """Stamp ``hop`` for ``key`` (a message id) now, or at ``at`` (a ``time.time()`` taken earlier)."""
    global _fd  # noqa: PLW0603 - one descriptor per process, opened on first use
    if _path is None:
        return
    if _fd is None:
        _fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    line = {"hop": hop, "key": key, "t": time.time() if at is None else at, "pid": os.getpid(), **extra}
    os.write(_fd, (json.dumps(line) + "\n").encode())
