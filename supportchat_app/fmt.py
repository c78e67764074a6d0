"""Plain text for the UI: initials, times, day labels, relative ages and user-facing error sentences (message text
with its mentions as people read them is `sync.models.mentions_shown`, shared with the notification worker)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

AVATAR_COLORS = ("indigo-6", "teal-7", "deep-orange-6", "purple-6", "blue-7", "green-7", "pink-6", "brown-6")


def as_datetime(value: Any) -> datetime | None:
    """Accept a datetime or an ISO string (the cache stores ISO text); always timezone-aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def local(value: Any) -> datetime | None:
    moment = as_datetime(value)
    return moment.astimezone() if moment else None


def initials(name: str | None) -> str:
    parts = [p for p in (name or "?").replace("@", " ").split() if p]
    return ("".join(p[0] for p in parts[:2]) or "?").upper()


def avatar_color(key: str | None) -> str:
    digest = hashlib.sha1((key or "").encode()).digest()
    return AVATAR_COLORS[digest[0] % len(AVATAR_COLORS)]


def clock(value: Any) -> str:
    moment = local(value)
    return moment.strftime("%H:%M") if moment else ""


def day_label(day: date, today: date | None = None) -> str:
    today = today or datetime.now().astimezone().date()
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day.year == today.year:
        return day.strftime("%A, %d %B")
    return day.strftime("%d %B %Y")


def day_of(value: Any) -> date | None:
    moment = local(value)
    return moment.date() if moment else None


def ago(value: Any, now: datetime | None = None) -> str:
    """Compact age for lists: 'now', '5m', '3h', 'Tue', '12 Nov'."""
    moment = as_datetime(value)
    if moment is None:
        return ""
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    if seconds < 6 * 86400:
        return moment.astimezone().strftime("%a")
    return moment.astimezone().strftime("%d %b").lstrip("0")


def opened(value: Any, now: datetime | None = None) -> str:
    """'opened 5m ago' while recent, else 'opened Sun 22 Nov'."""
    moment = as_datetime(value)
    if moment is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 86400:
        return f"opened {ago(moment, now)} ago" if seconds >= 60 else "opened just now"
    return "opened " + moment.astimezone().strftime("%a %d %b").replace(" 0", " ")


def wake_time(value: Any, now: datetime | None = None) -> str:
    """A time ahead, short, in local time: '18:36' today, 'tomorrow 09:00', 'Mon 09:00' within the week, else
    '12 Dec 09:00' (a snoozed ticket's wake-up time)."""
    moment = local(value)
    if moment is None:
        return ""
    today = (now or datetime.now(UTC)).astimezone().date()
    days = (moment.date() - today).days
    if days <= 0:
        return moment.strftime("%H:%M")
    if days == 1:
        return moment.strftime("tomorrow %H:%M")
    if days < 7:
        return moment.strftime("%a %H:%M")
    return moment.strftime("%d %b %H:%M").lstrip("0")


def since(value: Any, now: datetime | None = None) -> str:
    """'just now', '2 minutes ago', ... for the last-synced label."""
    moment = as_datetime(value)
    if moment is None:
        return "never"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    if seconds < 10:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def plain_error(exc: BaseException, action: str) -> str:
    """A sentence for the user: what failed and what to do next, never a traceback. A ``ValueError`` is input
    the engine refused (a name taken, an empty subject): its message says what to change, and trying the
    same again would not help, so only other failures get the retry advice."""
    message = str(exc).strip() or exc.__class__.__name__
    if not message.endswith((".", "!", "?")):
        message += "."
    if isinstance(exc, ValueError):
        return f"Could not {action}: {message}"
    return f"Could not {action}: {message} Please try again; if it keeps happening, check Settings."
