"""The app's deletes of a user's previous avatar (sync/avatar_store.py, sync/cache/avatar_deletes.py) through a
real engine, Storage and profiles: a delete the network dropped stays queued in the cache file and goes through
after the next pull; a queued delete never removes the picture the server's profile names (the profile change
failed, or another device went back to that picture)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import httpx
import psycopg
import pytest
from supabase import ClientOptions, create_client

from sync import SyncEngine
from sync.errors import RetryableError
from tests.conftest import User, create_user
from tests.stackproc import StackProcess
from tests.test_sync_support import EngineFactory


def picture(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))  # new bytes, new object key
    return path


def objects(stack: StackProcess, user: User) -> set[str]:
    with psycopg.connect(stack.db_url) as conn:
        rows = conn.execute(
            "select name from storage.objects where bucket_id = 'avatars' and name like %s", (f"{user.id}/%",)
        ).fetchall()
    return {str(r[0]) for r in rows}


def current(engine: SyncEngine, user: User) -> str:
    url = engine.cache.avatar_url(user.id)
    assert url is not None
    return url.removeprefix("avatars/")


def queued_in_file(engine: SyncEngine) -> list[str]:
    """The queued deletes as the cache file holds them (what a restarted app would find)."""
    with sqlite3.connect(engine.cache.path) as conn:
        return [str(r[0]) for r in conn.execute("select key from avatar_deletes order by key")]


async def _offline(bucket: str, keys: Sequence[str]) -> None:
    raise RetryableError("the network went")


async def test_a_delete_the_network_dropped_is_retried_after_the_next_pull(
    stack: StackProcess, engines: EngineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = create_user(stack.db_url, "customer", "Offline avatar customer")
    engine = await engines.open(user)
    await engine.sync_once()
    await engine.avatars.set(picture(tmp_path, "first.png"))
    first = current(engine, user)

    with monkeypatch.context() as patch:
        patch.setattr(engine.avatars.remote, "remove_files", _offline)
        await engine.avatars.set(picture(tmp_path, "second.png"))
        second = current(engine, user)
        assert objects(stack, user) == {first, second}, "the delete did not get through"
        assert queued_in_file(engine) == [first], "it waits in the cache file"
        await engine.sync_once()  # still offline for Storage: still queued
        assert queued_in_file(engine) == [first]

    await engine.sync_once()  # the network is back
    assert objects(stack, user) == {second}
    assert queued_in_file(engine) == []


async def test_a_queued_delete_never_removes_the_picture_the_profile_names(
    stack: StackProcess, engines: EngineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = create_user(stack.db_url, "customer", "Undecided avatar customer")
    engine = await engines.open(user)
    await engine.sync_once()
    await engine.avatars.set(picture(tmp_path, "first.png"))
    first = current(engine, user)

    # the profile change fails after the delete was queued: the picture in use stays
    with monkeypatch.context() as patch:
        patch.setattr(engine.avatars.remote, "update_profile", _offline_profile)
        with pytest.raises(RetryableError):
            await engine.avatars.set(picture(tmp_path, "second.png"))
    assert current(engine, user) == first
    await engine.sync_once()
    assert first in objects(stack, user) and queued_in_file(engine) == []

    # the delete fails, then another device goes back to the earlier picture: it stays too
    with monkeypatch.context() as patch:
        patch.setattr(engine.avatars.remote, "remove_files", _offline)
        await engine.avatars.set(picture(tmp_path, "third.png"))
    third = current(engine, user)
    assert queued_in_file(engine) == [first]
    with httpx.Client(timeout=60) as http:
        other_device = create_client(
            stack.api_url,
            stack.anon_key,
            ClientOptions(
                headers={"Authorization": f"Bearer {stack.mint(sub=user.id)}"},
                httpx_client=http,
                auto_refresh_token=False,
                persist_session=False,
            ),
        )
        other_device.table("profiles").update({"avatar_url": f"avatars/{first}"}).eq("id", user.id).execute()
    await engine.sync_once()
    assert {first, third} <= objects(stack, user), "the picture the profile names again is kept"
    assert queued_in_file(engine) == []


async def _offline_profile(user_id: str, changes: object) -> None:
    raise RetryableError("the network went")
