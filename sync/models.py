"""The engine's value types: what the UI reads (Ticket, Message, Profile, SearchHit), who is signed
in (LocalUser), where the server is (RemoteConfig) and how sync is doing (SyncStatus).

All frozen dataclasses: the UI gets snapshots it cannot mutate behind the engine's back.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal

# a mention as the composer writes it into a message: @[Display name](user uuid) (the app's components/mentions.py);
# the server finds the same in `private.record_mentions`
MENTION = re.compile(r"@\[([^\]\n]{0,200})\]\([0-9a-fA-F-]{36}\)")


def mentions_shown(content: str) -> str:
    """Message text as people read it: ``@[Carol](uuid)`` → ``@Carol`` (bubbles, inbox previews, desktop
    notifications, the notification worker's mails)."""
    return MENTION.sub(lambda m: "@" + m.group(1), content)


# closed sets: mypy checks every comparison against them
Role = Literal["customer", "agent", "admin"]
TicketStatus = Literal["open", "pending", "resolved", "closed"]
Priority = Literal["low", "normal", "high", "urgent"]
TicketView = Literal["mine", "unassigned", "all"]
LocalState = Literal["pending", "sent", "failed"]  # a cached row: waiting for the server, acknowledged, refused
SyncState = Literal["online", "offline", "connecting", "needs-sign-in"]
# realtime as the status shows it (sync/catchup.py): flowing; broken or dropping (a catch-up pull under way); caught up
LiveState = Literal["live", "interrupted", "caught-up"]
STAFF_ROLES: Final = frozenset({"agent", "admin"})
# a server message as an array (``Remote.pull_message_rows``, the initial sync's pages): its values in this
# order, the cache's stored order (sync/cache/writes.py ``message_values``) and then the cursor
MESSAGE_ROW: Final = (
    "id",
    "ticket_id",
    "sender_id",
    "content",
    "is_internal",
    "created_at",
    "edited_at",
    "deleted_at",
    "change_xid",
    "change_id",
)


def as_role(value: object) -> Role:
    """A role read from the server or a file; anything unknown is the least privileged one."""
    if value == "agent":
        return "agent"
    if value == "admin":
        return "admin"
    return "customer"


class _Unset(Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
"""Marks "argument not given" where None is a real value (``assignee_id=None`` releases a ticket)."""
Unset = _Unset


def jwt_role(token: str) -> str | None:
    """The ``role`` claim of a JWT, read without verifying it (we only refuse keys, never trust them)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    role = payload.get("role") if isinstance(payload, dict) else None
    return role if isinstance(role, str) else None


@dataclass(frozen=True)
class RemoteConfig:
    """Where the Supabase project is. Only ever the anon (publishable) key."""

    url: str
    anon_key: str

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"the Supabase URL must start with http:// or https://, got {self.url!r}")
        if not self.anon_key:
            raise ValueError("the Supabase anon key is missing")
        role = jwt_role(self.anon_key)
        # a secret key (sb_secret_…) or any JWT whose role is not anon (service_role, supabase_admin…)
        # would bypass or sidestep Row-Level Security: only the anon / publishable key is accepted
        if self.anon_key.startswith("sb_secret_") or (role is not None and role != "anon"):
            raise ValueError(
                "this is the service key: it bypasses Row-Level Security and never belongs in the "
                "desktop app; use the project's anon key"
            )


@dataclass(frozen=True)
class LocalUser:
    id: str
    email: str
    role: Role
    display_name: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


@dataclass(frozen=True)
class Profile:
    id: str
    role: Role
    display_name: str
    avatar_url: str | None = None


@dataclass(frozen=True)
class Ticket:
    id: str
    customer_id: str
    assignee_id: str | None
    subject: str
    status: TicketStatus
    priority: Priority
    created_at: str
    updated_at: str
    last_message_at: str
    unread_count: int = 0
    last_message_preview: str = ""
    customer_name: str = ""
    assignee_name: str = ""
    local_state: LocalState = "sent"  # 'pending' while a local create/update waits for the server
    error: str | None = None
    preview_at: str | None = None  # when the preview's message was written (an own queued one's local time too)
    snoozed_until: str | None = None  # the wake-up time of a ticket snoozed until then (status 'pending')


@dataclass(frozen=True)
class Message:
    id: str
    ticket_id: str
    sender_id: str
    content: str
    is_internal: bool
    created_at: str
    edited_at: str | None = None
    deleted_at: str | None = None
    local_state: LocalState = "sent"
    error: str | None = None
    sender_name: str = ""


@dataclass(frozen=True)
class SearchHit:
    ticket_id: str
    message_id: str | None  # None when the ticket subject matched
    subject: str
    snippet: str
    created_at: str


@dataclass(frozen=True)
class SyncStatus:
    state: SyncState
    pending: int
    failed: int
    last_synced_at: datetime | None
    last_error: str | None
    syncing: bool = False
    progress: float | None = None  # 0..1 during the initial sync
    live: LiveState = "live"  # realtime interrupted or dropping changes, and caught up since (sync/catchup.py)


def as_dict(obj: Any) -> dict[str, Any]:
    """A plain dict of a dataclass, for the CLI's JSON output."""
    out = asdict(obj)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
    return out


# two-step sign-in (sync/mfa.py) ---------------------------------------------------------------------
FactorStatus = Literal["verified", "unverified"]


@dataclass(frozen=True)
class Factor:
    id: str
    friendly_name: str
    status: FactorStatus


@dataclass(frozen=True)
class Enrollment:
    """A new, not yet verified TOTP factor: what an authenticator app needs to produce its codes."""

    factor_id: str
    secret: str
    uri: str  # otpauth://totp/...; drawn as a QR code by the app
