"""Presence: who is tracked on a topic, as Phoenix.Presence reports it to Supabase clients.

State per topic: key -> tracked entries, one per channel that tracked under that key. Each meta
carries a unique `phx_ref` (realtime-py and phoenix.js both index metas by it). A track replaces
the channel's previous meta (a diff with the old meta in `leaves` and the new one in `joins`); an
untrack, a leave or a dropped socket produces a leave. In-memory and single-node, like the rest of
localbase.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

Diff = dict[str, dict[str, dict[str, list[dict[str, Any]]]]]

_counter = itertools.count(1)


def _new_ref() -> str:
    return base64.urlsafe_b64encode(next(_counter).to_bytes(8, "big")).decode().rstrip("=")


class PresenceRegistry:
    def __init__(self) -> None:
        # topic -> key -> owner id (one per joined channel) -> meta
        self._state: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
        self._keys: dict[int, tuple[str, str]] = {}  # owner id -> (topic, key)

    def state(self, topic: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
        return {key: {"metas": list(entries.values())} for key, entries in self._state.get(topic, {}).items()}

    def track(self, owner: int, topic: str, key: str, payload: dict[str, Any]) -> Diff:
        leaves = self._remove(owner)
        meta = {**payload, "phx_ref": _new_ref()}
        if leaves:
            old = next(iter(leaves.values()))["metas"][0]
            meta["phx_ref_prev"] = old["phx_ref"]
        self._state.setdefault(topic, {}).setdefault(key, {})[owner] = meta
        self._keys[owner] = (topic, key)
        return {"joins": {key: {"metas": [meta]}}, "leaves": leaves}

    def untrack(self, owner: int) -> Diff | None:
        leaves = self._remove(owner)
        return {"joins": {}, "leaves": leaves} if leaves else None

    def _remove(self, owner: int) -> dict[str, dict[str, list[dict[str, Any]]]]:
        where = self._keys.pop(owner, None)
        if where is None:
            return {}
        topic, key = where
        entries = self._state.get(topic, {}).get(key, {})
        meta = entries.pop(owner, None)
        if not entries:
            self._state.get(topic, {}).pop(key, None)
            if not self._state.get(topic):
                self._state.pop(topic, None)
        return {key: {"metas": [meta]}} if meta is not None else {}
