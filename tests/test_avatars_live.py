"""Avatars between devices (issue 13, item 5 follow-up) through real engines, realtime and Storage: a new
picture reaches the other side's device by realtime (downloaded at once, no pull), a customer who may not
see another customer's profile gets neither the row nor the picture, and replacing or removing a picture
deletes the previous object from Storage, while nobody can delete someone else's picture."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from storage3.exceptions import StorageApiError
from supabase import Client, ClientOptions, create_client

from sync import SyncEngine, events
from tests.conftest import User, create_user
from tests.helpers import wait_for
from tests.stackproc import StackProcess
from tests.test_sync_live import started
from tests.test_sync_support import EngineFactory, seed_ticket


def picture(tmp_path: Path, name: str) -> tuple[Path, bytes]:
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(64)  # the signature is what the engine checks; new bytes, new key
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def objects(stack: StackProcess, user: User) -> set[str]:
    """The user's avatar objects as Storage's own table lists them."""
    with psycopg.connect(stack.db_url) as conn:
        rows = conn.execute(
            "select name from storage.objects where bucket_id = 'avatars' and name like %s", (f"{user.id}/%",)
        ).fetchall()
    return {r[0] for r in rows}


def key(engine: SyncEngine, user: User) -> str:
    url = engine.cache.avatar_url(user.id)
    assert url is not None and url.startswith("avatars/")
    return url.removeprefix("avatars/")


@pytest.fixture
def client_of(stack: StackProcess) -> Iterator[dict[str, Client]]:
    """supabase-py clients by user id, each with that user's token (for the attacker's calls)."""
    http = httpx.Client(timeout=120)

    class Clients(dict[str, Client]):
        def __missing__(self, uid: str) -> Client:
            token = stack.service_role_key if uid == "service" else stack.mint(sub=uid)
            self[uid] = create_client(
                stack.api_url,
                stack.anon_key,
                ClientOptions(
                    headers={"Authorization": f"Bearer {token}"},
                    httpx_client=http,
                    auto_refresh_token=False,
                    persist_session=False,
                ),
            )
            return self[uid]

    yield Clients()
    http.close()


async def test_a_new_picture_reaches_the_other_device_live_and_only_whom_rls_lets_see_it(
    stack: StackProcess, engines: EngineFactory, tmp_path: Path
) -> None:
    customer = create_user(stack.db_url, "customer", "Live avatar customer")
    other = create_user(stack.db_url, "customer", "Another customer")
    agent_user = create_user(stack.db_url, "agent", "Live avatar agent")
    seed_ticket(stack.db_url, customer, agent_user, "Live avatars")
    agent = await started(await engines.open(agent_user))
    watcher = await started(await engines.open(customer))
    stranger = await started(await engines.open(other))

    # the agent's new picture: on the customer's device without a pull (periodic pulls are off)
    for attempt in range(3):
        path, data = picture(tmp_path, f"agent-{attempt}.png")
        log = engines.log(watcher)
        mark = len(log)
        await agent.avatars.set(path)
        await wait_for(
            lambda data=data: (f := watcher.avatars.file(agent_user.id)) is not None and f.read_bytes() == data,
            timeout=30,
            what="the agent's new picture on the customer's device",
        )
        if not any(isinstance(e, events.StatusChanged) and e.status.syncing for e in log[mark:]):
            break  # no sync round ran meanwhile: it came by realtime
    else:
        pytest.fail("a sync round ran during each of 3 attempts: realtime keeps reconnecting")
    await wait_for(
        lambda: any(isinstance(e, events.AvatarsChanged) and agent_user.id in e.user_ids for e in log[mark:]),
        what="the customer's app told the picture arrived",
    )

    # a customer's picture goes live to staff, never to another customer (profiles RLS, unchanged)
    path, data = picture(tmp_path, "customer.png")
    await watcher.avatars.set(path)
    await wait_for(
        lambda: (f := agent.avatars.file(customer.id)) is not None and f.read_bytes() == data,
        timeout=30,
        what="the customer's picture on the agent's device",
    )
    await stranger.sync_once()
    assert stranger.cache.avatar_url(customer.id) is None and stranger.avatars.file(customer.id) is None
    assert not (stranger.avatars.files.root / customer.id).exists()

    # removing the picture: the other device drops its copy and is told (initials again)
    mark = len(engines.log(agent))
    await watcher.avatars.set(None)
    await wait_for(lambda: agent.avatars.file(customer.id) is None, timeout=30, what="the picture gone there too")
    await wait_for(
        lambda: any(
            isinstance(e, events.AvatarsChanged) and customer.id in e.user_ids for e in engines.log(agent)[mark:]
        ),
        what="the agent's app told the picture went",
    )


async def test_replacing_a_picture_deletes_the_old_object_and_nobody_deletes_anothers(
    stack: StackProcess, engines: EngineFactory, tmp_path: Path, client_of: dict[str, Client]
) -> None:
    owner_user = create_user(stack.db_url, "customer", "Replacing customer")
    attacker = create_user(stack.db_url, "customer", "Attacking customer")
    agent_user = create_user(stack.db_url, "agent", "Attacking agent")
    owner = await engines.open(owner_user)
    await owner.sync_once()

    await owner.avatars.set(picture(tmp_path, "first.png")[0])
    first = key(owner, owner_user)
    assert objects(stack, owner_user) == {first}
    await owner.avatars.set(picture(tmp_path, "second.png")[0])
    second = key(owner, owner_user)
    assert second != first
    assert objects(stack, owner_user) == {second}, "the replaced picture is gone from Storage"
    with pytest.raises(StorageApiError):
        client_of["service"].storage.from_("avatars").download(first)

    # neither another customer nor an agent (who may read it) can delete it; its bytes stay readable
    for uid in (attacker.id, agent_user.id):
        removed = client_of[uid].storage.from_("avatars").remove([second])
        assert removed == [], removed
    assert objects(stack, owner_user) == {second}
    assert client_of["service"].storage.from_("avatars").download(second).startswith(b"\x89PNG")

    await owner.avatars.set(None)
    assert owner.cache.avatar_url(owner_user.id) is None
    assert objects(stack, owner_user) == set(), "removing the picture removes its object"


async def test_an_avatar_that_is_a_page_never_reaches_the_agents_device(
    stack: StackProcess, engines: EngineFactory, tmp_path: Path, client_of: dict[str, Client]
) -> None:
    attacker = create_user(stack.db_url, "customer", "Page avatar customer")
    agent_user = create_user(stack.db_url, "agent", "Page avatar agent")
    seed_ticket(stack.db_url, attacker, agent_user, "Page avatars")
    agent = await engines.open(agent_user)
    await agent.sync_once()

    bucket = client_of[attacker.id].storage.from_("avatars")

    async def name_on_profile(file: str, data: bytes) -> None:
        """What the customer can do with their own token: store bytes under a picture's name and type, and
        name them on their profile; then the agent's device syncs."""
        bucket.upload(f"{attacker.id}/{file}", data, {"content-type": "image/png"})
        client_of[attacker.id].table("profiles").update({"avatar_url": f"avatars/{attacker.id}/{file}"}).eq(
            "id", attacker.id
        ).execute()
        await agent.sync_once()
        await agent.avatars.refresh()

    await name_on_profile("x.png", b"<!doctype html><script>fetch('/').then(r => r.text())</script>")
    assert agent.cache.avatar_url(attacker.id) == f"avatars/{attacker.id}/x.png", "the profile did arrive"
    assert agent.avatars.file(attacker.id) is None, "initials, not the page"
    assert not (agent.avatars.files.root / attacker.id / "x.png").exists()

    # a real picture afterwards arrives as usual
    data = picture(tmp_path, "real.png")[1]
    await name_on_profile("real.png", data)
    assert (f := agent.avatars.file(attacker.id)) is not None and f.read_bytes() == data
