"""The upload progress of an own message's files in the app (NiceGUI's simulated `User`, the real engine and
localbase): each file's bar shows the bytes its resumable upload reported (bytes / size, "… of …"), and the
close button beside a waiting file sends the message without it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction

from supportchat_app.components.attachments import size_text
from tests.conftest import create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_app_attachments import PDF, attach, count
from tests.test_app_flows import (  # noqa: F401 (the fixture)
    WAIT,
    app_data,
    bubble_with,
    engine_of,
    eventually,
    markers_in,
    running_app,
    seed_ticket,
    send,
    sign_in,
)
from tests.test_sync_support import sql


def _for(user: User, marker: str, attachment_id: str) -> Any:
    elements = user.find(marker=marker).elements if marker in markers_in_page(user) else set()
    return next((e for e in elements if e.props.get("data-attachment-id") == attachment_id), None)


def markers_in_page(user: User) -> set[str]:
    return {m for e in user.client.elements.values() for m in getattr(e, "_markers", [])}


async def test_file_bars_show_bytes_and_one_file_can_be_left_out(
    app_data: Path, stack: StackProcess, proxy: FaultProxy
) -> None:
    me = create_user(stack.db_url, "customer")  # a fresh customer: a first sync of one ticket
    ticket_id = seed_ticket(stack.db_url, me, None, f"Bytes {time.time_ns()}", [(me, "Files?", False)])
    async with running_app() as customer:
        await sign_in(customer, me)
        await customer.open(f"/?t={ticket_id}")
        await customer.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: bubble_with(customer, "Files?") is not None, "the thread")
        await attach(
            customer,
            ("keep.pdf", "application/pdf", PDF + bytes(200_000)),
            ("drop.pdf", "application/pdf", PDF + bytes(300_000)),
        )
        await eventually(lambda: count(customer, "pending-file") == 2, "two chips")
        proxy.set_mode("drop")
        send(customer, "Two files")
        await eventually(lambda: "file-progress" in markers_in(bubble_with(customer, "Two files")), "the bars", 30)
        engine = engine_of(customer)
        message = next(m for m in engine.cache.thread(ticket_id, limit=10) if m.content == "Two files")
        rows = {str(r["name"]): r for r in engine.cache.attachments(message.id)}
        keep, drop = str(rows["keep.pdf"]["id"]), str(rows["drop.pdf"]["id"])
        size = int(rows["keep.pdf"]["size"])

        engine.attachments.uploads.reporter(keep)(size // 4, size)  # what the resumable upload reports
        await eventually(
            lambda: (bar := _for(customer, "file-progress", keep)) is not None and abs(bar.value - 0.25) < 0.01,
            "the file's bar at a quarter",
            30,
        )
        assert _for(customer, "file-progress", drop).value == 0
        assert any(
            getattr(d, "text", "") == f"{size_text(size // 4)} of {size_text(size)}"
            for d in bubble_with(customer, "Two files").descendants()
        )

        UserInteraction(customer, {_for(customer, "cancel-file", drop)}, None).click()
        await eventually(
            lambda: [r["name"] for r in engine.cache.attachments(message.id)] == ["keep.pdf"], "the file left out"
        )
        await eventually(lambda: _for(customer, "file-progress", drop) is None, "its bar to go")
        proxy.set_mode("pass")
        await eventually(
            lambda: [r["local_state"] for r in engine.cache.attachments(message.id)] == ["sent"],
            "the message sent with its file",
            90,
        )
    assert sql(stack.db_url, "select name from public.attachments where message_id = %s", message.id) == [("keep.pdf",)]
