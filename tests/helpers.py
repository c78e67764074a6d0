"""Helpers shared by the tests (no tests here): waiting for a condition instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


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
