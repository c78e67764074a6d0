"""sync: the offline-first sync engine (cache, outbox, push, pull, live, session, status).

Public API (see sync/README.md)::

    from sync import SyncEngine, RemoteConfig, SyncStatus, Ticket, Message, Profile, LocalUser, SearchHit
    from sync import events
"""

from typing import TYPE_CHECKING

from sync import events
from sync.errors import AuthError, PermanentError, RetryableError, SyncError
from sync.models import UNSET, LocalUser, Message, Profile, RemoteConfig, SearchHit, SyncStatus, Ticket, Unset

if TYPE_CHECKING:
    from sync.engine import SyncEngine


def __getattr__(name: str) -> object:
    # the engine (and supabase-py with it) loads on first use, so the app's pages can import the light
    # parts (events, models, errors) at start without paying for the client libraries
    if name == "SyncEngine":
        from sync.engine import SyncEngine

        return SyncEngine
    raise AttributeError(f"module 'sync' has no attribute {name!r}")


__all__ = [
    "UNSET",
    "AuthError",
    "LocalUser",
    "Message",
    "PermanentError",
    "Profile",
    "RemoteConfig",
    "RetryableError",
    "SearchHit",
    "SyncEngine",
    "SyncError",
    "SyncStatus",
    "Ticket",
    "Unset",
    "events",
]
