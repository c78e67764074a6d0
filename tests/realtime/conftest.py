"""Realtime test fixtures: every client a test opens through tests.realtime.support is closed after it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.realtime.support import close_all


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    await close_all()
