"""Helpers shared by the tests (no tests here): waiting for a condition instead of sleeping; a cache file as an
earlier schema step left it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from sync.cache import files as cache_files
from sync.cache import schema as cache_schema


async def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``predicate`` every 50 ms until it holds; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """``wait_for`` with the app tests' argument order and their longer default."""
    await wait_for(predicate, timeout, what)


def cache_before(path: Path, step: str) -> sqlite3.Connection:
    """A new cache file at ``path`` with the schema steps before ``step`` (one of sync/cache/schema.py's), open for
    the test to fill; ``Cache.open`` then migrates it."""
    conn = sqlite3.connect(path)
    cache_files.step_functions(conn)
    before = cache_schema.MIGRATIONS.index(step)
    for earlier in cache_schema.MIGRATIONS[:before]:
        conn.executescript(earlier)
    conn.execute(f"pragma user_version = {before}")
    return conn
