"""Where the cores go during a phase of `e2e_latency` (bench/e2e.py): CPU time of each group of processes on the path.

On the 2-core machine the end-to-end latency with 50 chatting clients is mostly waiting for a core, so the bench
says who used them: the customer's and the agent's headless Chromium (chromedriver's descendants), the two app
processes, the stack's Python process (REST, auth, realtime in one event loop), PostgreSQL (the stack's postmaster
and its children) and the bench process itself (the chatting clients' sync engines and the drivers). Each figure is
CPU-seconds per second of the phase (1.0 = one core busy); a process born during the phase counts from zero, one
that ended during it is left out. `psutil` reads the times; nothing here touches the processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

# group name → (root pids, whether their descendants count too: not for the bench process, whose children are
# the stack, the apps and the browsers)
Groups = dict[str, tuple[list[int], bool]]


def _tree(pid: int, descendants: bool) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)] if descendants else [root]
    except psutil.Error:
        return []


def _times(groups: Groups) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for name, (roots, descendants) in groups.items():
        seen: dict[int, float] = {}
        for proc in (p for root in roots for p in _tree(root, descendants)):
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            seen[proc.pid] = t.user + t.system
        out[name] = seen
    return out


def postmaster(stack_data: Path) -> int | None:
    """The pid of the stack's PostgreSQL (first line of its postmaster.pid), or None."""
    try:
        return int((stack_data / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Meter:
    """CPU-seconds per second of each group between `start()` and `stop()`."""

    def __init__(self, groups: Groups) -> None:
        self.groups = groups
        self._start: dict[str, dict[int, float]] = {}
        self._t0 = 0.0

    def start(self) -> None:
        self._start, self._t0 = _times(self.groups), time.monotonic()

    def stop(self) -> dict[str, float]:
        end, span = _times(self.groups), max(time.monotonic() - self._t0, 1e-9)
        out = {}
        for name, procs in end.items():
            used = sum(t - self._start.get(name, {}).get(pid, 0.0) for pid, t in procs.items())
            out[name] = round(used / span, 3)
        out["total"] = round(sum(out.values()), 3)
        out["load_average"] = round(os.getloadavg()[0], 2)
        return out


def pids(items: Iterable[int | None]) -> list[int]:
    return [p for p in items if p is not None]
