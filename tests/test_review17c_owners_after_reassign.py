"""review17c (LOW): mend17's ``Pusher._messages`` fails every id the insert skipped whose owner it cannot read
(``Remote.message_owners`` answers under RLS). The user's own reply, delivered by a first push whose answer was
lost, is skipped by the resend's insert and then read back; when the ticket is reassigned away between the two
requests, the read finds nothing and the delivered reply is failed as held by another message ("Send as a new
message" then posts it twice). Before mend17 it was acknowledged. The interleaving is made here by doing the
reassignment when the push asks ``message_owners``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_attack_foreign_message_id import synced
from tests.test_sync_support import seed_ticket, sql


async def test_a_delivered_reply_is_not_failed_when_its_ticket_is_reassigned_during_the_check(
    stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "Delivered, then reassigned")
    async with synced(stack, users.agent, tmp_path / "client") as engine:
        reply = engine.commands.send_message(tid, "delivered once, its answer lost")
        sql(  # the first push committed, its answer was lost
            stack.db_url,
            "insert into messages (id, ticket_id, sender_id, content) values (%s, %s, %s, %s)",
            reply.id,
            tid,
            users.agent.id,
            reply.content,
        )
        remote = engine.remote
        ask = remote.message_owners

        async def reassigned_first(ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
            sql(stack.db_url, "update public.tickets set assignee_id = %s where id = %s", users.agent2.id, tid)
            return await ask(ids)

        remote.message_owners = reassigned_first  # type: ignore[method-assign]
        await engine.push()
        local = engine.cache.message(reply.id)
        assert local is not None
        assert local.local_state == "sent", (local.local_state, local.error)
        assert sql(stack.db_url, "select count(*) from messages where id = %s", reply.id) == [(1,)]
