"""The first rows of every sidebar list, held in the page ahead of a click (issue 14, bench `inbox_5k`'s
filter switch).

Why: a click on Inbox, Snoozed, Breaching soon or a saved view went to the server over the socket, the server
queried and sent the new rows, and only then did the list change — a round trip plus the server's work per
click (141 ms on a quiet machine, most of it waiting). Here the page already holds each entry's first page of
rows, as the same row dicts the list draws (``inbox_list.row_data``), so the list component
(``inbox_list.js``) draws the clicked entry's rows in the same frame as the click. The click still goes to the
server as before, and the server's rows are the truth: the moment its update arrives the component shows those
(identical, unless the cache changed in between), and a prediction the server does not confirm within a few
seconds is dropped.

What each entry would show is predicted with the page's own state machinery: a copy of the inbox state gets
the same call the click makes (``set_special`` / ``apply_view``), and its filter is queried like the live list
(the first ``FIRST_ROWS`` rows). The lists are recomputed off the click path — on a timer, and only after the
cache or the state changed (``stale``); the first time a second after the page connected, not while it loads
(computing every list costs tens of ms of the server's time, which a page loaded right after would wait for), one
list at a time, each after a turn (supportchat_app/foreground.py), so a page requested meanwhile waits for one
list's query at most — and sent only when they differ, on an element of their own (an
invisible one: ``inbox_prefetch.js`` keeps them in ``window.scInboxPrefetch``), so the list element's own
updates stay small. Mentions is not prefetched (it opens a view of its own): its click takes the server path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any

from nicegui import ui

from supportchat_app.components.views_bar import entry_key
from supportchat_app.state import InboxState
from sync.workspace_rows import SavedView

EVERY = 1.0  # seconds: how often stale lists may be recomputed


def predicted(state: InboxState, action: Callable[[InboxState], None]) -> InboxState:
    """The state a click would leave, computed on a copy (the page's state is not touched)."""
    copy = dataclasses.replace(
        state,
        statuses=set(state.statuses),
        priorities=set(state.priorities),
        tags=set(state.tags),
        on_change=lambda: None,
    )
    action(copy)
    return copy


def entry_states(state: InboxState, views: list[SavedView]) -> dict[str, InboxState]:
    """Each sidebar entry's key (as components/views_bar.py names them) → the state its click leaves."""
    out = {
        "inbox": predicted(state, lambda s: s.set_special(None)),
        "snoozed": predicted(state, lambda s: s.set_special("snoozed")),
        "breaching": predicted(state, lambda s: s.set_special("breaching")),
    }
    for view in views:  # keyed by id: a view named like a built-in entry never stands in for that entry's list
        out[entry_key(view)] = predicted(state, partial(_apply, view))
    return out


def _apply(view: SavedView, state: InboxState) -> None:
    state.apply_view(view)


class InboxPrefetch(ui.element, component="inbox_prefetch.js"):
    """Holds the lists (entry key → rows) in the page; ``show`` sends them when they changed."""

    def __init__(self) -> None:
        super().__init__()
        self._props["lists"] = ()
        self.stale = True  # the lists are to be computed (again): cleared when their computing starts

    def show(self, lists: dict[str, list[dict[str, Any]]]) -> None:
        # pairs of tuples, not dicts and lists: NiceGUI would copy those into observable collections
        packed = tuple((key, tuple(rows)) for key, rows in lists.items())
        if self._props["lists"] == packed:
            return
        self._props["lists"] = packed
        self.update()


if InboxPrefetch.component is None:
    raise RuntimeError("inbox_prefetch.js must lie beside inbox_prefetch.py (the frozen build's datas in build.spec)")
