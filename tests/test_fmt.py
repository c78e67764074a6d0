"""The UI's plain-text times (supportchat_app/fmt.py): a snoozed ticket's wake-up time, short and local."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from supportchat_app import fmt

NOW = datetime(2026, 11, 30, 10, 0).astimezone()  # a Monday, local time


@pytest.mark.parametrize(
    ("until", "expected", "why"),
    [
        (NOW.replace(hour=18, minute=36), "18:36", "today: the clock alone"),
        (NOW + timedelta(days=1, hours=-1), "tomorrow 09:00", "tomorrow: said so, not the clock alone"),
        (NOW + timedelta(days=4), "Fri 10:00", "this week: the weekday"),
        (NOW + timedelta(days=12), "12 Dec 10:00", "later: the date"),
    ],
)
def test_wake_time(until: datetime, expected: str, why: str) -> None:
    assert fmt.wake_time(until, NOW) == expected, why


def test_wake_time_of_nothing_is_empty() -> None:
    assert fmt.wake_time(None, NOW) == ""
