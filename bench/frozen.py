"""Frozen-build start-up: how long an agent waits after starting the installed SupportChat.

- `frozen_start` (s, median of 3): a new frozen process (`supportchat --web`, fresh data dir, server from
  SUPABASE_URL/SUPABASE_ANON_KEY = the bench stack) until its sign-in page answers 200; extra fields: the
  build's size on disk (`size_mb`), the first run alone, and the floor `python -c "import nicegui"`.
- `frozen_start_window` (s, median of 2): the frozen app under Xvfb until its native Qt WebEngine window
  shows the drawn sign-in page (screen polled every ~0.3 s, so the figure is that coarse).

Baseline, measured in the same run: the same app started from source (`python -m supportchat_app` in the
project's venv), which is what a developer runs and what the bundle must not be slower than. The import
floor is reported beside it to show how much of either is NiceGUI itself. The OS file cache is warm for
both (the build or a previous run just read the files): dropping it would need root and would slow every
other process on the machine, so "cold" here means a new process and a new data dir, not a cold disk.

Reuses the build in $TMPDIR/supportchat-frozen when present (tests/test_frozen.py leaves it there), else
builds it first (~1 min).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import BenchEnv, Figure, figure, median
from localbase.postgres import free_port
from tests.test_frozen import (
    ROOT,
    alive,
    app_env,
    binary_path,
    build,
    build_lock,
    descendants,
    native_env,
    stop,
    wait_for_native_signin,
    wait_for_page,
    xvfb,
)

WEB_RUNS = 3
WINDOW_RUNS = 2


def _frozen() -> Path:
    with build_lock(shared=True):
        if binary_path().is_file():
            return binary_path()
    return build()


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def _time_web(cmd: list[str], env: BenchEnv, data: Path) -> float:
    port = free_port()
    proc = subprocess.Popen(
        [*cmd, "--web", "--port", str(port), "--no-browser"],
        cwd=ROOT,
        env=app_env(env.stack, data),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return wait_for_page(f"http://127.0.0.1:{port}/signin", 60, proc)
    finally:
        stop(proc)


def _time_window(cmd: list[str], env: BenchEnv, data: Path, shot: Path) -> float:
    port = free_port()
    with xvfb() as display:
        started = time.monotonic()
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)],
            cwd=ROOT,
            env=native_env(env.stack, data, display),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_native_signin(display, shot, proc, 120)
            return time.monotonic() - started
        finally:
            below = descendants(proc.pid)
            stop(proc)
            time.sleep(1)
            for pid in below:  # the window process may outlive a SIGTERMed app (see tests/test_frozen.py)
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def _import_floor() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import nicegui"], check=True, capture_output=True)
    return time.perf_counter() - started


def bench_frozen_start(env: BenchEnv) -> list[Figure]:
    exe = _frozen()
    with build_lock(shared=True):  # nobody rebuilds the bundle while it is being measured
        return _measure(env, exe)


def _measure(env: BenchEnv, exe: Path) -> list[Figure]:
    source = [sys.executable, "-m", "supportchat_app"]
    runs: dict[str, list[float]] = {"frozen": [], "source": []}
    for i in range(WEB_RUNS):  # interleaved, so a busy moment on the shared machine hits both alike
        runs["frozen"].append(_time_web([str(exe)], env, env.tmp / f"frozen-web-{i}"))
        runs["source"].append(_time_web(source, env, env.tmp / f"source-web-{i}"))
    windows: dict[str, list[float]] = {"frozen": [], "source": []}
    shot = env.tmp / "window.png"
    for i in range(WINDOW_RUNS):
        windows["frozen"].append(_time_window([str(exe)], env, env.tmp / f"frozen-win-{i}", shot))
        windows["source"].append(_time_window(source, env, env.tmp / f"source-win-{i}", shot))
    extra: dict[str, Any] = {
        "size_mb": round(_size_mb(exe.parent), 1),
        "runs": WEB_RUNS,
        "first_run_s": round(runs["frozen"][0], 3),
        "import_nicegui_floor_s": round(_import_floor(), 3),
        "goal_s": 3.0,
    }
    shutil.rmtree(env.tmp / "frozen-web-0", ignore_errors=True)
    return [
        figure(
            "frozen_start",
            median(runs["frozen"]),
            "s",
            "same app from source (venv python)",
            median(runs["source"]),
            higher_is_better=False,
            **extra,
        ),
        figure(
            "frozen_start_window",
            median(windows["frozen"]),
            "s",
            "same app from source under Xvfb",
            median(windows["source"]),
            higher_is_better=False,
            size_mb=extra["size_mb"],
            runs=WINDOW_RUNS,
        ),
    ]


BENCHES = {"frozen_start": bench_frozen_start}
