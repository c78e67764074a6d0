"""The benchmark harness: one real localbase for the run, discovery of `BENCHES`, and output.

Every bench module (`bench/<area>.py`) exposes `BENCHES: dict[str, Callable[[BenchEnv], list[dict]]]`. Each callable
returns figures `{"bench", "value", "unit", "baseline", "baseline_value", "ratio", ...extra}` where the baseline was
measured in the same run (ratio > 1 means better than the baseline). The harness prints a readable table, then one JSON
line per figure.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench
from tests.conftest import Users, create_user
from tests.stackproc import TEST_RATE_LIMITS, StackProcess

Figure = dict[str, Any]
BenchFn = Callable[["BenchEnv"], list[Figure]]


@dataclass
class BenchEnv:
    stack: StackProcess
    tmp: Path
    users: Users


def figure(
    name: str, value: float, unit: str, baseline: str, baseline_value: float, *, higher_is_better: bool, **extra: Any
) -> Figure:
    """A figure with its ratio oriented so that > 1 always means better than the baseline."""
    if higher_is_better:
        ratio = value / baseline_value if baseline_value else float("inf")
    else:
        ratio = baseline_value / value if value else float("inf")
    return {
        "bench": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 3),
        "ratio": round(ratio, 3),
        **extra,
    }


def percentile(samples: list[float], pct: float) -> float:
    """The pct-th percentile (0..100) of samples, nearest-rank."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


HOP_TRACED = {"e2e_latency"}  # benches that report the hop trace


def _modules() -> Iterator[Any]:
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name not in {"harness", "__main__"}:
            yield importlib.import_module(f"bench.{info.name}")


def discover() -> dict[str, BenchFn]:
    found: dict[str, BenchFn] = {}
    for module in _modules():
        found.update(getattr(module, "BENCHES", {}))
    return found


def stack_settings(names: list[str]) -> dict[str, str]:
    """The stack environment the chosen benches ask for beyond the suite's (a module's ``STACK_SETTINGS``: bench
    name -> settings), as a Supabase project's settings can raise a quota; only when such a bench runs."""
    wanted: dict[str, str] = {}
    for module in _modules():
        for name, settings in getattr(module, "STACK_SETTINGS", {}).items():
            if name in names:
                wanted.update(settings)
    return wanted


HOP_TRACE = "SUPPORTCHAT_HOP_TRACE"  # the hop trace's file (sync/hops.py, localbase/hops.py)


@contextmanager
def environment(trace_hops: bool = False, settings: dict[str, str] | None = None) -> Iterator[BenchEnv]:
    """The run's stack and users. With ``trace_hops`` the stack and every process started from here (the apps
    of bench/e2e.py) stamp each message's hops into one file (``SUPPORTCHAT_HOP_TRACE``, in the run's tmp dir).
    ``settings``: stack environment beyond the suite's (``stack_settings``)."""
    with tempfile.TemporaryDirectory(prefix="supportchat-bench-") as tmp:
        root = Path(tmp)
        if trace_hops and not os.environ.get(HOP_TRACE):
            os.environ[HOP_TRACE] = str(root / "hops.jsonl")
        stack = StackProcess(root / "stack", env={**TEST_RATE_LIMITS, **(settings or {})})
        stack.start()
        try:
            users = Users(
                admin=create_user(stack.db_url, "admin"),
                agent=create_user(stack.db_url, "agent"),
                agent2=create_user(stack.db_url, "agent"),
                customer=create_user(stack.db_url, "customer"),
                customer2=create_user(stack.db_url, "customer"),
            )
            yield BenchEnv(stack, root, users)
        finally:
            stack.stop()


def print_table(figures: list[Figure]) -> None:
    print(f"{'bench':<22} {'value':>12} {'unit':<10} {'baseline':<34} {'baseline value':>14} {'ratio':>8}")
    for fig in figures:
        print(
            f"{fig['bench']:<22} {fig['value']:>12} {fig['unit']:<10} {fig['baseline']:<34} "
            f"{fig['baseline_value']:>14} {fig['ratio']:>8}"
        )


def main(names: list[str]) -> int:
    benches = discover()
    unknown = [n for n in names if n not in benches]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(sorted(benches))}", file=sys.stderr)
        return 2
    chosen = names or sorted(benches)
    figures: list[Figure] = []
    # the hop trace costs a line per message per hop: only when every chosen bench reads it (bench/e2e.py)
    traced = all(name in HOP_TRACED for name in chosen)
    with environment(trace_hops=traced, settings=stack_settings(chosen)) as env:
        for name in chosen:
            started = time.monotonic()
            try:
                figures.extend(benches[name](env))
            except Exception as exc:  # one broken bench must not hide the others' numbers
                print(f"{name}: failed: {exc!r}", file=sys.stderr)
            print(f"# {name} took {time.monotonic() - started:.1f} s", file=sys.stderr)
    print_table(figures)
    for fig in figures:
        print(json.dumps(fig))
    return 0
