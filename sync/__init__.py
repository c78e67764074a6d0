"""sync: the offline-first sync engine (cache, outbox, push, pull, live, session, status).

Public API (see sync/README.md)::

    from sync import SyncEngine, RemoteConfig, SyncStatus, Ticket, Message, Profile, LocalUser, SearchHit
    from sync import events
"""

from sync import events
from sync.engine import SyncEngine
from sync.errors import AuthError, PermanentError, RetryableError, SyncError
from sync.models import UNSET, LocalUser, Message, Profile, RemoteConfig, SearchHit, SyncStatus, Ticket, Unset

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
