"""Pure decisions of the notification worker: what a mail carries, what an SMTP reply means, when to retry.

No I/O here, so each rule has a unit test (tests/test_notify_decisions.py); the worker only applies them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

Preference = Literal["never", "unread", "always"]


class Outcome(StrEnum):
    """What one SMTP reply (or the lack of one) means for the notifications a mail carried."""

    SENT = "sent"  # 2xx: the server took responsibility for the mail
    RETRY = "retry"  # 4xx, or the connection failed before the mail was handed over: try again later
    FAILED = "failed"  # 5xx: the server refuses it for good (bad address, policy); retrying cannot help


@dataclass(frozen=True)
class Item:
    """One queued notification with the message it is about, as the worker loaded it."""

    notification_id: int
    message_id: str
    reason: Literal["reply", "mention"]
    content: str
    created_at: datetime
    deleted: bool
    sender_name: str


def classify_reply(code: int) -> Outcome:
    if 200 <= code < 300:
        return Outcome.SENT
    if 400 <= code < 500:
        return Outcome.RETRY
    return Outcome.FAILED


def select_items(
    preference: Preference, last_read_at: datetime | None, items: list[Item]
) -> tuple[list[Item], str | None]:
    """The items a mail should carry, or none and the reason the whole group is skipped.

    Deleted messages never go out. With 'unread' a message the recipient's read marker has passed is
    dropped (they saw it in the app within the delay); with 'always' it still goes.
    """
    if preference == "never":
        return [], "recipient's preference is never"
    live = [i for i in items if not i.deleted]
    if not live:
        return [], "message deleted"
    if preference == "unread" and last_read_at is not None:
        live = [i for i in live if i.created_at > last_read_at]
        if not live:
            return [], "read in the app before the delay ran out"
    return sorted(live, key=lambda i: (i.created_at, i.notification_id)), None


def address_refusal(address: str) -> str | None:
    """Why a recipient's address cannot be mailed at all, or None. The worker speaks plain SMTP (no SMTPUTF8), so
    an address must be ASCII: a non-ASCII one fails for good, without a try (the server would refuse its RCPT)."""
    if not address.isascii():
        return "the recipient's address is not ASCII (this worker does not send SMTPUTF8 mail)"
    return None


def backoff_seconds(attempts: int, base: float, cap: float = 3600.0, rng: random.Random | None = None) -> float:
    """Exponential backoff with half jitter: attempt 1 waits base·(0.5..1), attempt 2 2·base·(0.5..1), ..."""
    full = min(cap, base * 2.0 ** max(attempts - 1, 0))
    draw = rng.random() if rng is not None else random.random()
    return full / 2 + draw * full / 2
