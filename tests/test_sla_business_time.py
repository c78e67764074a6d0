"""The business calendar the SLA badges show (supportchat_app/business_time.py), pure: whether the clock runs,
and when that changes, by the server's rules (no hours = round the clock, holidays are whole local days)."""

from __future__ import annotations

from datetime import UTC, datetime

from supportchat_app.business_time import Calendar
from sync.workspace_rows import BusinessHours, Holiday


def week(*spans: tuple[int, str, str]) -> list[BusinessHours]:
    return [BusinessHours(f"h{i}", d, o, c) for i, (d, o, c) in enumerate(spans)]


def test_no_hours_means_round_the_clock() -> None:
    assert Calendar.of("UTC", [], [Holiday("2026-12-07", "x")]) is None


def test_open_closed_holidays_and_time_zone() -> None:
    hours = week(*[(d, "09:00", "12:00") for d in range(1, 6)], *[(d, "13:00", "17:00") for d in range(1, 6)])
    berlin = Calendar.of("Europe/Berlin", hours, [Holiday("2026-12-07", "a Monday off")])
    assert berlin is not None
    # Wednesday 2026-12-09 08:30 UTC = 09:30 in Berlin: running until the lunch break
    state = berlin.state(datetime(2026, 12, 9, 8, 30, tzinfo=UTC))
    assert state.running and state.changes_at == datetime(2026, 12, 9, 11, 0, tzinfo=UTC)
    # lunch: paused until 13:00 Berlin
    state = berlin.state(datetime(2026, 12, 9, 11, 30, tzinfo=UTC))
    assert not state.running and state.changes_at == datetime(2026, 12, 9, 12, 0, tzinfo=UTC)
    # Friday evening: paused over the weekend and the Monday holiday, until Tuesday 09:00 Berlin
    state = berlin.state(datetime(2026, 12, 4, 17, 0, tzinfo=UTC))
    assert not state.running and state.changes_at == datetime(2026, 12, 8, 8, 0, tzinfo=UTC)
    assert berlin.describe(datetime(2026, 12, 8, 8, 0, tzinfo=UTC)) == "Tue 09:00 (Europe/Berlin)"


def test_a_holiday_on_the_only_open_day_skips_a_week() -> None:
    only = Calendar.of("UTC", week((1, "09:00", "10:00")), [Holiday("2026-12-07", "")])
    assert only is not None
    state = only.state(datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
    assert not state.running and state.changes_at == datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
