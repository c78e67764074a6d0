"""A canned reply's files in the app (issue 14) through NiceGUI's simulated `User` on the real stack: offline,
an agent picks a shared canned reply that carries a file; the file joins the composer's pending files (the
device's copy), the reply is sent with it, and once back online the message and its attachment (a copy, with
the same bytes) reach the server once.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from tests.conftest import Users, create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # the same harness as the flow tests
    WAIT,
    app_data,  # noqa: F401 - fixture
    engine_of,
    eventually,
    running_app,
    seed_ticket,
    send,
    sign_in,
)
from tests.test_sync_support import EngineFactory, sql

pytestmark = pytest.mark.timeout(240)

PDF = b"%PDF-1.4 return label"


async def test_picking_a_canned_reply_attaches_its_files_offline_too(
    app_data: Path,
    users: Users,
    stack: StackProcess,
    *,
    proxy: FaultProxy,
    engines: EngineFactory,
    tmp_path: Path,
) -> None:
    title = f"Return label {uuid.uuid4().hex[:6]}"
    admin = await engines.open(users.admin)
    reply = admin.workspace.save_canned_reply(title, "Your return label is attached.", shared=True)
    await admin.sync_once()
    source = tmp_path / "label.pdf"
    source.write_bytes(PDF)
    await admin.canned_files.add(reply, source, "Return label.pdf")
    await admin.sync_once()  # the add is queued in the outbox: this pushes it
    fresh = create_user(stack.db_url, "agent")  # a short first sync, also late in the full suite
    ticket = seed_ticket(
        stack.db_url, users.customer, fresh, "Sending it back", [(users.customer, "How do I return it?", False)]
    )
    async with running_app() as agent:
        await sign_in(agent, fresh)
        engine = engine_of(agent)
        await eventually(
            lambda: any(engine.canned_files.local(f) for f in engine.canned_files.files(reply)),
            "the file here",
            timeout=180,
        )
        await agent.open(f"/?t={ticket}")
        await agent.should_see(marker="canned-open", retries=WAIT)
        proxy.set_mode("drop")
        agent.find(marker="canned-open").click()
        agent.find(marker="canned-query").type(title)
        await agent.should_see(marker=f"canned-{title}", retries=WAIT)
        agent.find(marker=f"canned-{title}").click()
        await agent.should_see("Return label.pdf", retries=WAIT)  # a pending file chip in the composer
        send(agent, "Your return label is attached.")
        await eventually(lambda: engine.status.pending >= 1, "queued offline")
        proxy.set_mode("pass")
        engine.wake()
        await eventually(
            lambda: (
                sql(
                    stack.db_url,
                    "select a.name, a.sha256, a.object_path like %s from attachments a join messages m"
                    " on m.id = a.message_id where m.ticket_id = %s",
                    f"{ticket}/%",
                    ticket,
                )
                == [("Return label.pdf", hashlib.sha256(PDF).hexdigest(), True)]
            ),
            "the message's own copy of the file on the server",
            timeout=90,
        )
