"""Cache reads kept while the cache is unchanged, for the pages of one signed-in user (issue 14, bench `inbox_5k`).

Why: each new workspace page asked the cache the same questions as the page before it — the sidebar's counts
(components/views_bar.py) at its socket's connect, each sidebar list's first rows (components/inbox_prefetch.py) a
second later — on the one event loop, while the next page's request was often arriving (a reload; the bench loads the
next page as soon as the last one mounted). An answer is reused while the cache's data version
(``Cache.data_version``, which changes at every commit) is the one it was read at and it is younger than ``FRESH_S``:
time alone moves some answers without a write (the breaching-soon list and count, snoozed tickets waking), which an
open page also followed only after a change.

Keys are compared by equality, not hashed (a saved view's filters are a dict): ``LIMIT`` answers per cache at most,
the oldest dropped first. Not a library's cache: the validity is SQLite's data version of one connection, which
none of them know.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from sync.cache import Cache

V = TypeVar("V")
FRESH_S = 30.0  # seconds an answer of an unchanged cache is reused for
LIMIT = 16  # answers kept per cache


@dataclass(frozen=True)
class _Answer(Generic[V]):
    key: object
    version: int  # the cache's data version before it was read
    at: float  # time.monotonic() then
    value: V


class Kept(Generic[V]):
    """Answers of one kind (the sidebar's counts, a list's first tickets), per cache."""

    def __init__(self) -> None:
        self._kept: weakref.WeakKeyDictionary[Cache, list[_Answer[V]]] = weakref.WeakKeyDictionary()

    def get(self, cache: Cache, key: object, version: int) -> V | None:
        """The answer for ``key`` read at ``version`` (the cache's data version now), not older than ``FRESH_S``."""
        now = time.monotonic()
        for answer in self._kept.get(cache, ()):
            if answer.key == key:
                return answer.value if answer.version == version and now - answer.at < FRESH_S else None
        return None

    def put(self, cache: Cache, key: object, version: int, at: float, value: V) -> None:
        """Keep ``value``, read for ``key`` with the cache at ``version`` from ``at`` (``time.monotonic()``) on."""
        answers = [a for a in self._kept.get(cache, ()) if a.key != key][-(LIMIT - 1) :]
        self._kept[cache] = [*answers, _Answer(key, version, at, value)]
