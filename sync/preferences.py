"""A user's email notification preferences (``public.notification_preferences``), offline-first.

The user's choice is written to the cache and queued in the outbox (kind ``preferences``, one entry per
user: a newer choice replaces a queued or failed one) in one transaction, like every other local write;
the Pusher upserts it (merge on ``user_id``, which the server fills from the token, so the payload never
names a user), and the Puller brings the server's row back — unless a choice of this device is still
waiting, which then wins until the server has it. The notify worker (notify/) reads the same row.

Values mirror the server's check constraints, so a bad value is refused here with a sentence and never
queued: ``email`` is never | unread | always; ``unread_after_minutes`` is 0..10080 (a week) or None (the
worker's default delay).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, TypeGuard, get_args

EmailWhen = Literal["never", "unread", "always"]
EMAIL_WHEN: Final = get_args(EmailWhen)
MAX_MINUTES: Final = 10080
KIND: Final = "preferences"


def is_email_when(value: str) -> TypeGuard[EmailWhen]:
    return value in EMAIL_WHEN


@dataclass(frozen=True)
class Preferences:
    """What this user chose; ``pending`` while the choice waits in the outbox, ``error`` when the server refused it."""

    email: EmailWhen = "unread"
    unread_after_minutes: int | None = None
    pending: bool = False
    error: str | None = None

    def payload(self) -> dict[str, Any]:
        return {"email": self.email, "unread_after_minutes": self.unread_after_minutes}


def checked(email: str, unread_after_minutes: int | None) -> Preferences:
    """The choice as the server will accept it, or ValueError with what to fix."""
    if not is_email_when(email):
        raise ValueError(f"email notifications must be one of {', '.join(EMAIL_WHEN)}, not {email!r}")
    if unread_after_minutes is not None:
        if isinstance(unread_after_minutes, bool) or not isinstance(unread_after_minutes, int):
            raise ValueError("the delay must be a whole number of minutes")
        if not 0 <= unread_after_minutes <= MAX_MINUTES:
            raise ValueError(f"the delay must be between 0 and {MAX_MINUTES} minutes (a week)")
    minutes = unread_after_minutes if email == "unread" else None
    return Preferences(email, minutes)


def from_row(row: dict[str, Any] | None) -> Preferences:
    """The server's row (None: no row yet, which the worker reads as 'unread' with its default delay)."""
    if not row:
        return Preferences()
    email = str(row.get("email") or "unread")
    minutes = row.get("unread_after_minutes")
    return Preferences(email if is_email_when(email) else "unread", int(minutes) if minutes is not None else None)
