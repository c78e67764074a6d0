"""Time and chance, injected so the loop's timing can be tested without waiting (tests/fakes.py)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    wall: Callable[[], float] = time.time  # token expiry is wall-clock seconds
    monotonic: Callable[[], float] = time.monotonic  # when the next periodic pull is due
    random: Callable[[], float] = random.random  # backoff jitter
