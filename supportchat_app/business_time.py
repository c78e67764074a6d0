"""Business hours as the SLA badges show them (issue 14), pure: whether the SLA clock runs now and when that
changes next, from the cached business hours, holidays and time zone.

The server counts due times (``private.add_business_minutes`` in migration 20261129000540_sla.sql) with
the same rules, which this repeats for display only: no business hours at all means round the clock
(holidays then do not count either); a holiday is a whole day in the settings' time zone; several spans a
day are allowed. A badge is "paused" while the clock stands still, with the instant it runs again.

Written here rather than with a calendar library: the rules are the server's own (a handful of lines over
``zoneinfo``), and a library's notion of business days would drift from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync.workspace_rows import BusinessHours, Holiday

HORIZON_DAYS = 400  # how far ahead the next opening is looked for (a year of holidays, then give up)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _day_of(holiday: Holiday) -> date | None:
    """A holiday's day, or None for one that is no day Python knows ('infinity', a year past 9999 or BC, which
    PostgreSQL stores and a server before migration 20261214000200 let admins write): it excludes no real day."""
    try:
        return date.fromisoformat(holiday.day)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ClockState:
    running: bool
    changes_at: datetime | None  # when it stops (running) or runs again (paused); None: not within the horizon


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    spans: tuple[tuple[int, time, time], ...]  # (ISO weekday, opens, closes), sorted
    holidays: frozenset[date]

    @classmethod
    def of(cls, timezone: str, hours: Iterable[BusinessHours], holidays: Iterable[Holiday]) -> Calendar | None:
        """The calendar, or None when the clock always runs (no business hours)."""
        spans = tuple(sorted((h.weekday, time.fromisoformat(h.opens), time.fromisoformat(h.closes)) for h in hours))
        if not spans:
            return None
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return cls(zone, spans, frozenset(d for d in map(_day_of, holidays) if d is not None))

    def _day(self, day: date) -> list[tuple[datetime, datetime]]:
        if day in self.holidays:
            return []
        weekday = day.isoweekday()
        return [
            (datetime.combine(day, o, self.zone), datetime.combine(day, c, self.zone))
            for w, o, c in self.spans
            if w == weekday
        ]

    def state(self, now: datetime) -> ClockState:
        """Whether the SLA clock runs at ``now`` and when that changes next (UTC)."""
        local = now.astimezone(self.zone)
        for offset in range(HORIZON_DAYS):
            for opens, closes in self._day(local.date() + timedelta(days=offset)):
                if opens <= local < closes:
                    return ClockState(True, closes.astimezone(UTC))
                if local < opens:
                    return ClockState(False, opens.astimezone(UTC))
        return ClockState(False, None)

    def describe(self, moment: datetime) -> str:
        """``Mon 09:00 (Europe/Berlin)``: a moment as the business calendar names it."""
        local = moment.astimezone(self.zone)
        return f"{WEEKDAYS[local.weekday()][:3]} {local:%H:%M} ({self.zone.key})"
