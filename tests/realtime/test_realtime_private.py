"""Private channels (Realtime Authorization): RLS on realtime.messages decides who joins, receives,
sends and tracks, at join and again on access_token; the REST broadcast honours `private`; Broadcast
from Database (realtime.send) reaches the private topic only; `private_only` refuses public joins.

Each test installs its own policies on topics with a random tag (as the superuser, like a migration),
so they never meet the app's own `ticket:` policies.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import Users
from tests.realtime.support import RawSocket
from tests.stackproc import StackProcess

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def tag(db: psycopg.Connection) -> Iterator[str]:
    """Topics `<tag>:ro` (authenticated may receive, nobody may send), `<tag>:rw` (claim `lbtest` = 'yes'
    may receive, send and track)."""
    t = f"authz{uuid.uuid4().hex[:8]}"
    db.execute(
        f"create policy {t}_ro on realtime.messages for select to authenticated using (realtime.topic() = '{t}:ro')"
    )
    db.execute(
        f"create policy {t}_rw_read on realtime.messages for select to authenticated"
        f" using (realtime.topic() = '{t}:rw' and (auth.jwt() ->> 'lbtest') = 'yes')"
    )
    db.execute(
        f"create policy {t}_rw_write on realtime.messages for insert to authenticated"
        f" with check (realtime.topic() = '{t}:rw' and (auth.jwt() ->> 'lbtest') = 'yes')"
    )
    yield t
    for name in ("ro", "rw_read", "rw_write"):
        db.execute(f"drop policy {t}_{name} on realtime.messages")


def private(presence: bool = False, ack: bool = True) -> dict[str, object]:
    return {"private": True, "broadcast": {"ack": ack, "self": False}, "presence": {"key": "", "enabled": presence}}


async def test_join_needs_a_select_policy(stack: StackProcess, users: Users, tag: str, db: psycopg.Connection) -> None:
    db.execute(
        f"create policy {tag}_boom on realtime.messages for select to authenticated"
        f" using (case when realtime.topic() = '{tag}:boom'"
        " then 1 / (length(realtime.topic()) - length(realtime.topic())) = 1 else false end)"
    )
    sock = await RawSocket.open(stack)
    try:
        denied = await sock.join(f"realtime:{tag}:ro", private())  # the anon key: no policy for anon
        assert denied == {
            "status": "error",
            "response": {
                "reason": f"Unauthorized: You do not have permissions to read from this Channel topic: {tag}:ro"
            },
        }
        user = stack.mint(users.customer.id)
        assert (await sock.join(f"realtime:{tag}:ro", private(), token=user))["status"] == "ok"
        assert (await sock.join(f"realtime:{tag}:rw", private(), token=user))["status"] == "error"
        assert (await sock.join(f"realtime:{tag}:rw", private(), token=stack.mint(users.customer.id, lbtest="yes")))[
            "status"
        ] == "ok"
        assert (await sock.join(f"realtime:{tag}:rw", private(), token=stack.service_role_key))["status"] == "ok"
        # a policy that raises is a "no", and the socket lives on
        assert (await sock.join(f"realtime:{tag}:boom", private(), token=user))["response"] == {
            "reason": f"Unauthorized: You do not have permissions to read from this Channel topic: {tag}:boom"
        }
        assert (await sock.join(f"realtime:{tag}:ro", private(), token=user))["status"] == "ok"
        # the probes were rolled back: nothing of these checks stays in realtime.messages
        assert db.execute("select count(*) from realtime.messages where topic like %s", (f"{tag}%",)).fetchone() == (0,)
    finally:
        db.execute(f"drop policy {tag}_boom on realtime.messages")
        await sock.close()


async def test_send_and_track_need_an_insert_policy(stack: StackProcess, users: Users, tag: str) -> None:
    reader, writer = await RawSocket.open(stack), await RawSocket.open(stack)
    public = await RawSocket.open(stack)
    try:
        yes = stack.mint(users.customer.id, lbtest="yes")
        assert (await reader.join(f"realtime:{tag}:rw", private(presence=True), token=yes))["status"] == "ok"
        await reader.next(lambda f: f["event"] == "presence_state")
        assert (await public.join(f"realtime:{tag}:rw", {"presence": {"enabled": True}}))["status"] == "ok"
        # may read :ro but not send there: the broadcast is dropped without a reply, the track refused
        no_write = stack.mint(users.agent.id)
        assert (await writer.join(f"realtime:{tag}:ro", private(presence=True), token=no_write))["status"] == "ok"
        await writer.send(f"realtime:{tag}:ro", "broadcast", {"type": "broadcast", "event": "x", "payload": {}})
        ref = await writer.send(f"realtime:{tag}:ro", "presence", {"event": "track", "payload": {"me": 1}})
        assert await writer.reply(ref) == {"status": "error", "response": {}}
        assert not [f for f in writer.frames if f["event"] == "phx_reply"]  # no ack for the dropped broadcast
        # may send and track on :rw; the public channel of the same name is another topic and hears nothing
        assert (await writer.join(f"realtime:{tag}:rw", private(presence=True), token=yes))["status"] == "ok"
        hello = {"type": "broadcast", "event": "hi", "payload": {"n": 1}}
        ref = await writer.send(f"realtime:{tag}:rw", "broadcast", hello)
        assert (await writer.reply(ref))["status"] == "ok"
        got = await reader.next(lambda f: f["event"] == "broadcast")
        assert got["payload"] == {"type": "broadcast", "event": "hi", "payload": {"n": 1}}
        ref = await writer.send(f"realtime:{tag}:rw", "presence", {"event": "track", "payload": {"me": 2}})
        assert (await writer.reply(ref))["status"] == "ok"
        diff = await reader.next(lambda f: f["event"] == "presence_diff")
        assert [m["me"] for e in diff["payload"]["joins"].values() for m in e["metas"]] == [2]
        ref = await public.send("phoenix", "heartbeat", {})
        await public.reply(ref)
        assert not [f for f in public.frames if f["event"] in ("broadcast", "presence_diff")]
        # a track on a channel joined without presence turns presence on (read asked then), as on Supabase
        late = await RawSocket.open(stack)
        try:
            assert (await late.join(f"realtime:{tag}:rw", private(presence=False), token=yes))["status"] == "ok"
            ref = await late.send(f"realtime:{tag}:rw", "presence", {"event": "track", "payload": {"me": 3}})
            assert (await late.reply(ref))["status"] == "ok"
            own = await late.next(lambda f: f["event"] == "presence_diff")
            assert [m["me"] for e in own["payload"]["joins"].values() for m in e["metas"]] == [3]
        finally:
            await late.close()
    finally:
        for s in (reader, writer, public):
            await s.close()


async def test_access_token_rechecks_the_policies(stack: StackProcess, users: Users, tag: str) -> None:
    sock = await RawSocket.open(stack)
    try:
        topic = f"realtime:{tag}:rw"
        assert (await sock.join(topic, private(), token=stack.mint(users.customer.id, lbtest="yes")))["status"] == "ok"
        await sock.send(topic, "access_token", {"access_token": stack.mint(users.customer.id, lbtest="yes")})
        ref = await sock.send("phoenix", "heartbeat", {})
        await sock.reply(ref)
        assert not [f for f in sock.frames if f["event"] in ("system", "phx_close")]  # still allowed: kept
        await sock.send(topic, "access_token", {"access_token": stack.mint(users.customer.id, lbtest="no")})
        system = await sock.next(lambda f: f["event"] == "system")
        assert system["payload"]["status"] == "error"
        assert system["payload"]["message"] == f"You do not have permissions to read from this Channel topic: {tag}:rw"
        await sock.next(lambda f: f["event"] == "phx_close" and f["topic"] == topic)
        ref = await sock.send(topic, "broadcast", {"type": "broadcast", "event": "x", "payload": {}})
        assert (await sock.reply(ref))["response"] == {"reason": "unmatched topic"}
    finally:
        await sock.close()


async def test_rest_broadcast_honours_private(stack: StackProcess, users: Users, tag: str) -> None:
    reader = await RawSocket.open(stack)
    yes = stack.mint(users.customer.id, lbtest="yes")
    try:
        assert (await reader.join(f"realtime:{tag}:rw", private(), token=yes))["status"] == "ok"
        base = f"{stack.api_url}/realtime/v1/api/broadcast"
        anon = {"apikey": stack.anon_key}
        user = {"apikey": stack.anon_key, "Authorization": f"Bearer {yes}"}
        async with httpx.AsyncClient() as http:
            single = await http.post(f"{base}/{tag}:rw/events/x?private=true", json={"by": "anon"}, headers=anon)
            assert single.status_code == 403
            batch = await http.post(
                base,
                headers=anon,
                json={"messages": [{"topic": f"{tag}:rw", "event": "x", "payload": {"by": "anon"}, "private": True}]},
            )
            assert batch.status_code == 202  # as Supabase: accepted, the unauthorized topic skipped
            public = await http.post(
                base,
                headers=anon,
                json={"messages": [{"topic": f"{tag}:rw", "event": "x", "payload": {"by": "public"}}]},
            )
            assert public.status_code == 202  # reaches the public topic of that name only
            ok = await http.post(f"{base}/{tag}:rw/events/x?private=true", json={"by": "user"}, headers=user)
            assert ok.status_code == 202
        first = await reader.next(lambda f: f["event"] == "broadcast")
        assert first["payload"]["payload"] == {"by": "user"}
    finally:
        await reader.close()


async def test_broadcast_from_database_reaches_the_private_topic(
    stack: StackProcess, users: Users, tag: str, db: psycopg.Connection
) -> None:
    private_sock, public_sock = await RawSocket.open(stack), await RawSocket.open(stack)
    try:
        topic = f"realtime:{tag}:ro"
        assert (await private_sock.join(topic, private(), token=stack.mint(users.customer.id)))["status"] == "ok"
        assert (await public_sock.join(topic, {}))["status"] == "ok"
        db.execute("select realtime.send('{\"a\": 1}'::jsonb, 'first', %s, true)", (f"{tag}:ro",))
        db.execute("begin")
        db.execute("select realtime.send('{\"gone\": 1}'::jsonb, 'gone', %s, true)", (f"{tag}:ro",))
        db.execute("rollback")
        db.execute("select realtime.send(%s::jsonb, 'big', %s, true)", ('{"blob": "' + "b" * 9000 + '"}', f"{tag}:ro"))
        got = await private_sock.next(lambda f: f["event"] == "broadcast")
        assert got["payload"]["event"] == "first" and got["payload"]["payload"]["a"] == 1
        assert "id" in got["payload"]["payload"]  # realtime.send gives every payload an id
        big = await private_sock.next(lambda f: f["event"] == "broadcast")
        assert big["payload"]["event"] == "big" and len(big["payload"]["payload"]["blob"]) == 9000  # read back
        ref = await public_sock.send("phoenix", "heartbeat", {})
        await public_sock.reply(ref)
        assert not [f for f in public_sock.frames if f["event"] == "broadcast"]
        assert not [f for f in private_sock.frames if f["event"] == "broadcast"]  # the rolled-back one never came
    finally:
        await private_sock.close()
        await public_sock.close()


@pytest.fixture(scope="module")
def private_only_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCALBASE_REALTIME_PRIVATE_ONLY", "1")
        proc = StackProcess(Path(tmp_path_factory.mktemp("private-only")) / "data")
        proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_private_only_refuses_public_channels(private_only_stack: StackProcess) -> None:
    sock = await RawSocket.open(private_only_stack)
    try:
        assert await sock.join("realtime:lobby", {"private": False}) == {
            "status": "error",
            "response": {"reason": "PrivateOnly: This project only allows private channels"},
        }
        service = private_only_stack.service_role_key
        assert (await sock.join("realtime:lobby", {"private": True}, token=service))["status"] == "ok"
    finally:
        await sock.close()
