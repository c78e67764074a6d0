"""What exists while a user is signed in: their ``Cache`` and the parts that work on it.

``SyncEngine`` opens one ``SignedIn`` per user (on start-up from the saved session, or on sign-in) and
closes it on sign-out or when another user signs in; the app reaches the parts it uses through the
engine (``engine.parts``, or one by one as ``engine.cache``, ``engine.commands``, ``engine.attachments``,
``engine.history``, ``engine.avatars``, ``engine.partial``: ``Part``). Verbs that live as long as the engine
(``Workspace``) reach the signed-in user through the narrow ``LocalWrites`` port instead of the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sync import events, scope
from sync.account import Account
from sync.applier import LiveApplier
from sync.attachment_files import AttachmentFiles
from sync.avatar_store import Avatars
from sync.cache import Cache
from sync.canned_files import CannedFiles
from sync.commands import LocalCommands
from sync.history import HistoryCommands
from sync.models import LiveState, LocalUser
from sync.partial import PartialSync
from sync.pull import Puller
from sync.push import Pusher
from sync.remote import Remote


@dataclass
class SignedIn:
    user: LocalUser
    cache: Cache  # the UI's reads
    commands: LocalCommands  # the user's changes → cache + outbox
    attachments: AttachmentFiles
    pusher: Pusher  # outbox → server
    puller: Puller  # server → cache by cursor
    live: LiveApplier  # realtime → cache
    history: HistoryCommands  # edits, deletes and revisions of messages
    avatars: Avatars  # everyone's pictures, downloaded beside the cache
    canned_files: CannedFiles  # the files canned replies carry, downloaded beside the cache (staff)
    partial: PartialSync  # the cached scope, and tickets/search beyond it on demand

    @classmethod
    def on(
        cls,
        cache: Cache,
        user: LocalUser,
        remote: Remote,
        account: Account,
        emit: Callable[[events.Event], None],
        *,
        on_write: Callable[[], None],
        want_pull: Callable[[], None],
        wall: Callable[[], float],
        on_live: Callable[[LiveState], None] | None = None,
        on_reach: Callable[[bool], None] | None = None,
    ) -> SignedIn:
        """The parts on the user's open cache (``Cache.open``, off the event loop: it may create, migrate or
        rebuild the file). ``on_write`` runs after each local command, ``want_pull`` when realtime asks for a
        catch-up pull, ``on_live`` when realtime is interrupted or caught up (sync/catchup.py), ``on_reach`` when the
        realtime probe finds the server unreachable or answering again (sync/live.py)."""
        scope.apply_default(cache)  # a new cache takes SUPPORTCHAT_SYNC_SCOPE_DAYS, if set (partial sync)
        files = AttachmentFiles(cache, remote, user.id)
        puller = Puller(cache, remote)
        commands = LocalCommands(cache, user, files, on_write, emit)
        avatars = Avatars(cache, remote, user, account, emit)
        return cls(
            user,
            cache,
            commands,
            files,
            Pusher(cache, remote, emit, uploads=files.uploads),
            puller,
            LiveApplier(
                cache,
                remote,
                puller,
                emit,
                want_pull,
                on_profiles=avatars.refresh,
                on_live=on_live,
                on_reach=on_reach,
                clock=account.clock.monotonic,
            ),
            HistoryCommands(cache, user, on_write, emit, discard=commands.discard, wall=wall),
            avatars,
            CannedFiles(cache, remote, user, account, emit, on_write=on_write),
            PartialSync(cache, remote, puller, account, emit=emit, want_pull=want_pull),
        )

    def close(self) -> None:
        self.cache.close()


T = TypeVar("T")


class Holder(Protocol):
    @property
    def parts(self) -> SignedIn: ...


class Part(Generic[T]):
    """One of the signed-in parts as an attribute of their holder (``engine.cache``); reading it raises
    AuthError(refused) when nobody is signed in (the holder's ``parts`` does)."""

    def __init__(self, get: Callable[[SignedIn], T]) -> None:
        self._get = get

    def __get__(self, holder: Holder, owner: type | None = None) -> T:
        return self._get(holder.parts)


@dataclass(frozen=True)
class LocalWrites:
    """The port through which verbs that outlive a sign-in (``Workspace``, sync/workspace.py) reach the
    signed-in user: their cache, who they are, and a way to say a local write happened."""

    parts: Callable[[], SignedIn]  # AuthError(refused) when nobody is signed in
    wrote: Callable[[], None]  # refresh the counts, wake the loop
    emit: Callable[[events.Event], None]

    @property
    def cache(self) -> Cache:
        return self.parts().cache

    def signed_in_user(self) -> LocalUser:
        return self.parts().user

    def local_write_done(self, changes: Sequence[events.Event]) -> None:
        """A local command queued work: refresh the counts, wake the loop, tell the UI."""
        self.wrote()
        for event in changes:
            self.emit(event)
