"""A server copy of a message older than the cached one never lands over it (cache schema v16).

Pull pages and realtime changes arrive by different paths: a page read before a change (or before this
device's own push) can be applied after it. The cache used to take whatever came last, so a saved edit showed
the previous text again, and a deleted message's text came back into the cache file, until the pull's cursor
reached the newer version. Each row now carries its writing transaction (``change_xid``) and an older copy is
ignored. Pure cache logic on a real SQLite file, no server.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sync.cache import Cache

TS = "2026-11-20T10:00:00.000000+00:00"


def _message(ticket: str, sender: str, content: str, xid: int | None, deleted: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": MESSAGE,
        "ticket_id": ticket,
        "sender_id": sender,
        "content": "" if deleted else content,
        "created_at": TS,
        "edited_at": TS if xid and xid > 100 else None,
        "deleted_at": "2026-11-20T11:00:00.000000+00:00" if deleted else None,
    }
    if xid is not None:
        row["change_xid"] = xid
    return row


MESSAGE = str(uuid.uuid4())


async def _cache(tmp_path: Path) -> tuple[Cache, str, str]:
    me, ticket = str(uuid.uuid4()), str(uuid.uuid4())
    cache = Cache.open(tmp_path / "cache.sqlite3", me, "agent")
    await cache.apply_page(
        "tickets",
        [
            {
                "id": ticket,
                "customer_id": me,
                "subject": "s",
                "status": "open",
                "priority": "normal",
                "created_at": TS,
                "updated_at": TS,
                "last_message_at": TS,
            }
        ],
        (1, 1),
        initial=False,
    )
    return cache, me, ticket


async def test_an_older_copy_does_not_undo_a_newer_edit(tmp_path: Path) -> None:
    cache, me, ticket = await _cache(tmp_path)
    await cache.apply_live({"messages": [_message(ticket, me, "first text", 100)]})
    await cache.apply_live({"messages": [_message(ticket, me, "edited text", 105)]})
    # a pull page read before the edit, applied after it
    await cache.apply_page("messages", [_message(ticket, me, "first text", 100)], (100, 1), initial=False)
    found = cache.message(MESSAGE)
    assert found is not None and found.content == "edited text"
    # the same version again, and a newer one, still land
    await cache.apply_page("messages", [_message(ticket, me, "edited again", 105)], (105, 1), initial=False)
    assert cache.message(MESSAGE).content == "edited again"  # type: ignore[union-attr]
    await cache.apply_live({"messages": [_message(ticket, me, "third", 110)]})
    assert cache.message(MESSAGE).content == "third"  # type: ignore[union-attr]
    # a copy that does not say its version (an older source) lands as before
    await cache.apply_live({"messages": [_message(ticket, me, "unstamped", None)]})
    assert cache.message(MESSAGE).content == "unstamped"  # type: ignore[union-attr]
    cache.close()


async def test_an_older_copy_does_not_bring_back_a_deleted_text(tmp_path: Path) -> None:
    cache, me, ticket = await _cache(tmp_path)
    secret = f"secret-{uuid.uuid4().hex}"
    await cache.apply_live({"messages": [_message(ticket, me, secret, 100)]})
    await cache.apply_live({"messages": [_message(ticket, me, secret, 107, deleted=True)]})
    await cache.apply_page("messages", [_message(ticket, me, secret, 100)], (100, 1), initial=False)
    found = cache.message(MESSAGE)
    assert found is not None and found.deleted_at is not None and found.content == ""
    assert not cache.search(secret.split("-")[1])
    cache.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("cache.sqlite3"))
    assert secret.encode() not in raw
