"""The cache's size per message (issue 15: at a million messages the file was 6 x the text): the thread index
and the search index stay small (schema v12), and search still finds what the user typed.

Bytes are counted with SQLite's ``dbstat`` on a cache of 4,000 synthetic messages: the indexes that serve
threads and search took 225 bytes a message before v12 (covering thread index, FTS positions and sizes),
about 145 after.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from pathlib import Path

import pytest

from sync.cache import Cache

WORDS = ["refund", "invoice", "password", "reset", "the", "order", "shipping", "late", "thanks", "help", "e-mail"]
TS = "2026-11-20T10:00:00.000000+00:00"


@pytest.fixture
async def filled(tmp_path: Path) -> Cache:
    me = str(uuid.uuid4())
    rng = random.Random(15)
    cache = Cache.open(tmp_path / "cache.sqlite3", me, "agent")
    tickets = [str(uuid.uuid4()) for _ in range(200)]
    ticket_rows = [
        {
            "id": t,
            "customer_id": me,
            "subject": f"ticket {i}",
            "status": "open",
            "priority": "normal",
            "created_at": TS,
            "updated_at": TS,
            "last_message_at": TS,
        }
        for i, t in enumerate(tickets)
    ]
    await cache.apply_page("tickets", ticket_rows, (1, 1), initial=True)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "ticket_id": rng.choice(tickets),
            "sender_id": me,
            "content": " ".join(rng.choices(WORDS[:-1], k=14)),
            "created_at": f"2026-11-20T10:{i // 1000:02d}:00.{i:06d}+00:00",
        }
        for i in range(4000)
    ]
    rows[7]["content"] = "my e-mail changed, please update the invoice"
    await cache.apply_page("messages", rows, (1, 2), initial=True)
    await cache.finish_initial_sync()
    return cache


async def test_thread_and_search_indexes_stay_small(filled: Cache) -> None:
    conn = sqlite3.connect(filled.path)
    try:
        sizes = dict(conn.execute("select name, sum(pgsize) from dbstat group by name").fetchall())
    finally:
        conn.close()
        filled.close()
    indexes = sum(size for name, size in sizes.items() if name == "messages_thread" or name.startswith("messages_fts"))
    assert indexes / 4000 < 180, sizes  # 225 bytes a message before schema v12


async def test_search_still_finds_words_and_punctuated_words(filled: Cache) -> None:
    try:
        assert len(filled.search("refund", limit=500)) == 500
        hits = filled.search("e-mail invoice")  # no phrase query: the words, each anywhere in the message
        assert [h.snippet for h in hits] and all("mail" in h.snippet for h in hits)
        assert filled.search('"e-mail" OR NOT') == []  # FTS syntax is searched for as words: none here
        assert filled.search("ticket 7")[0].message_id is None  # subjects are searched too
    finally:
        filled.close()
