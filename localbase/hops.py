"""Hop trace of the stack: wall-clock stamps of a row on its way through REST and realtime (benchmarks only).

Off unless the stack process starts with ``SUPPORTCHAT_HOP_TRACE=<file>``; then ``mark(hop, key)`` appends one
JSON line ``{"hop", "key", "t", "pid"}`` per call to that file, one ``write`` on an ``O_APPEND`` descriptor, so
the stack's lines and the client processes' (which stamp with the same format) never interleave.
``bench/e2e.py`` joins them by row id into the per-hop breakdown of ``e2e_latency``. localbase imports nothing
of ours, so this is the stack's own copy of the few lines the apps' tracer has. Off, ``mark`` costs one test
of a module global; ``enabled()`` lets a caller skip gathering keys altogether.
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


def mark(hop: str, key: str, **extra: str) -> None:
    """Stamp ``hop`` for ``key`` (a row id) now."""
    global _fd  # noqa: PLW0603 - one descriptor per process, opened on first use
    if _path is None:
        return
    if _fd is None:
        _fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    line = {"hop": hop, "key": key, "t": time.time(), "pid": os.getpid(), **extra}
    os.write(_fd, (json.dumps(line) + "\n").encode())
