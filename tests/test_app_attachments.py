"""Attachments in the app (issue 12 item 4), through NiceGUI's simulated `User`, the real sync engine and the
real localbase: files handed to the composer's uploader become pending chips, refused ones show their reason
and are never queued, a send carries them all, the other side sees a thumbnail and a file chip whose bytes come
from the app's guarded `/attachment/<id>` route; another session of the app cannot read them by id, an internal
note's file is refused to a customer even from a stale cache; cancel discards a queued message with its files.
"""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing.user import User
from nicegui.testing.user_interaction import UserInteraction
from PIL import Image

from supportchat_app import staged
from tests.conftest import Users
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess
from tests.test_app_flows import (  # noqa: F401 (the fixture)
    WAIT,
    another_user,
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


def png(width: int = 640, height: int = 400) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 60)).save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def attach(user: User, *files: tuple[str, str, bytes]) -> None:
    """What the browser's uploader posts after a pick, a paste or a drop."""
    uploader: Any = user.find(marker="attach-input").elements.pop()
    await uploader.handle_uploads([SmallFileUpload(name, mime, data) for name, mime, data in files])


def count(user: User, marker: str) -> int:
    return len(user.find(marker=marker).elements) if marker in _all_markers(user) else 0


def _all_markers(user: User) -> set[str]:
    with user:
        from nicegui import ui

        return {m for e in ui.context.client.elements.values() for m in getattr(e, "_markers", [])}


def server_attachments(db_url: str, ticket_id: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(db_url) as conn:
        return [
            tuple(r)
            for r in conn.execute(  # type: ignore[misc]
                "select a.name, m.content, a.size from attachments a join messages m on m.id = a.message_id"
                " where a.ticket_id = %s order by a.name",
                (ticket_id,),
            )
        ]


async def test_attach_send_and_see_thumbnail_and_chip_on_the_other_side(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    ticket_id = seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        f"Files {time.time_ns()}",
        [(users.customer, "Here is what I see", False)],
    )
    image = png()
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        customer = another_user()
        await sign_in(customer, users.customer)
        outsider = another_user()
        await sign_in(outsider, users.customer2)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        await attach(
            agent,
            ("error.png", "image/png", image),
            ("invoice.pdf", "application/pdf", PDF),
            ("zoomed.png", "image/png", png(300, 300)),
            ("setup.exe", "application/octet-stream", b"MZ" * 100),
            ("huge.png", "image/png", b"\0" * (25 * 1024 * 1024 + 1)),
        )
        await eventually(lambda: count(agent, "pending-file") == 3, "three pending chips")
        assert count(agent, "refused-file") == 2, "the refused files are shown, not queued"
        reasons = sorted(
            d.text
            for e in agent.find(marker="refused-file").elements
            for d in e.descendants()
            if isinstance(getattr(d, "text", None), str) and ": " in d.text
        )
        assert reasons[0] == "huge.png: The file is 25.0 MB; attachments may be at most 25 MB."
        assert reasons[1].startswith("setup.exe: Files of type ") and reasons[1].endswith(" cannot be attached.")
        engine = engine_of(agent)
        assert [f.name for f in staged.listing(engine.cache.files_dir, ticket_id)] == [
            "error.png",
            "invoice.pdf",
            "zoomed.png",
        ]

        send(agent, "Both files")
        await eventually(lambda: len(server_attachments(stack.db_url, ticket_id)) == 3, "the files on the server", 60)
        assert server_attachments(stack.db_url, ticket_id)[:2] == [
            ("error.png", "Both files", len(image)),
            ("invoice.pdf", "Both files", len(PDF)),
        ]
        assert staged.listing(engine.cache.files_dir, ticket_id) == [], "the staged copies went with the send"
        await eventually(
            lambda: count(agent, "pending-file") == 0 and count(agent, "refused-file") == 0, "the composer emptied"
        )

        await customer.open(f"/?t={ticket_id}")
        await eventually(
            lambda: {"attachment-thumb", "attachment-chip"} <= markers_in(bubble_with(customer, "Both files")),
            "the customer's thumbnail and file chip",
            60,
        )
        rows = engine_of(customer).cache.attachments(
            next(m.id for m in engine_of(customer).cache.thread(ticket_id, limit=10) if m.content == "Both files")
        )
        by_name = {r["name"]: str(r["id"]) for r in rows}

        thumb = await customer.http_client.get(f"/attachment/{by_name['error.png']}/thumb")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
        assert Image.open(io.BytesIO(thumb.content)).size == (480, 300), "a thumbnail, not the full image"
        full = await customer.http_client.get(f"/attachment/{by_name['error.png']}")
        assert full.content == image and full.headers["x-content-type-options"] == "nosniff"
        saved = await customer.http_client.get(f"/attachment/{by_name['invoice.pdf']}?download=1")
        assert saved.content == PDF and saved.headers["content-disposition"].startswith("attachment;")
        assert saved.headers["content-type"] == "application/octet-stream"

        # the lightbox: both images of the message, next / previous wrap around
        thumbs = {t.props["data-attachment-id"]: t for t in customer.find(marker="attachment-thumb").elements}
        assert set(thumbs) == {by_name["error.png"], by_name["zoomed.png"]}
        UserInteraction(customer, {thumbs[by_name["error.png"]]}, None).click()
        await customer.should_see(marker="lightbox-image")
        image_el: Any = customer.find(marker="lightbox-image").elements.pop()
        assert image_el.props["src"] == f"/attachment/{by_name['error.png']}"
        customer.find(marker="lightbox-next").click()
        assert image_el.props["src"] == f"/attachment/{by_name['zoomed.png']}"
        customer.find(marker="lightbox-next").click()
        assert image_el.props["src"] == f"/attachment/{by_name['error.png']}"
        customer.find(marker="lightbox-previous").click()
        assert image_el.props["src"] == f"/attachment/{by_name['zoomed.png']}"
        customer.find(marker="lightbox-zoom-in").click()
        assert image_el.style.get("zoom") == "1.5"
        customer.find(marker="lightbox-close").click()
        await customer.should_not_see(marker="lightbox-image")

        # another session of the same app (another account) cannot read them by id
        stolen = await outsider.http_client.get(f"/attachment/{by_name['error.png']}")
        assert stolen.status_code == 404 and stolen.content != image
        assert (await outsider.http_client.get(f"/attachment/{by_name['error.png']}/thumb")).status_code == 404
        assert (await outsider.http_client.get("/attachment/../../settings.json")).status_code == 404


async def test_internal_note_file_is_refused_to_a_customer_even_from_a_stale_cache(
    app_data: Path, users: Users, stack: StackProcess
) -> None:
    ticket_id = seed_ticket(
        stack.db_url,
        users.customer2,
        users.agent2,
        f"Note file {time.time_ns()}",
        [(users.customer2, "Refund please", False)],
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent2)
        customer = another_user()
        await sign_in(customer, users.customer2)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        agent.find(marker="composer-mode").elements.pop().value = "note"
        await attach(agent, ("ledger.csv", "text/csv", b"id,amount\n1,20\n"))
        await eventually(lambda: count(agent, "pending-file") == 1, "the pending chip")
        send(agent, "Charged twice, see ledger")
        await eventually(lambda: len(server_attachments(stack.db_url, ticket_id)) == 1, "the file on the server", 60)
        await eventually(
            lambda: "attachment-chip" in markers_in(bubble_with(agent, "Charged twice, see ledger")), "the agent's chip"
        )
        row = engine_of(agent).cache.attachments(
            next(m.id for m in engine_of(agent).cache.thread(ticket_id, limit=10) if m.is_internal)
        )[0]
        assert (await agent.http_client.get(f"/attachment/{row['id']}")).content == b"id,amount\n1,20\n"

        await customer.open(f"/?t={ticket_id}")
        await customer.should_see("Refund please", retries=WAIT)
        customer_engine = engine_of(customer)
        assert customer_engine.cache.attachment(str(row["id"])) is None, "RLS kept it out of the customer's cache"
        # a stale cache (say, written before a role change) holding the note and its file: still refused. Written
        # once the first sync is done: until then its writer may hold a transaction open (in the full suite the
        # shared customer's first sync is long), and this second connection would find the file locked
        await eventually(customer_engine.cache.initial_sync_done, "the customer's first sync", 180)
        with sqlite3.connect(customer_engine.cache.path, timeout=60) as conn:
            message = engine_of(agent).cache.message(str(row["message_id"]))
            conn.execute(
                "insert into messages (id, ticket_id, sender_id, content, is_internal, created_at,"
                " local_state) values (?, ?, ?, ?, 1, ?, 'sent')",
                (message.id, ticket_id, message.sender_id, message.content, message.created_at),
            )
            conn.execute(
                "insert into attachments (id, message_id, ticket_id, uploader_id, name, mime, size, sha256,"
                " object_path, created_at, local_state) select ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'sent'",
                [
                    row[k]
                    for k in (
                        "id",
                        "message_id",
                        "ticket_id",
                        "uploader_id",
                        "name",
                        "mime",
                        "size",
                        "sha256",
                        "object_path",
                        "created_at",
                    )
                ],
            )
        assert customer_engine.cache.attachment(str(row["id"])) is not None
        leaked = await customer.http_client.get(f"/attachment/{row['id']}")
        assert leaked.status_code == 404 and b"amount" not in leaked.content


async def test_cancel_discards_a_queued_message_with_its_files(
    app_data: Path, users: Users, stack: StackProcess, proxy: FaultProxy
) -> None:
    ticket_id = seed_ticket(
        stack.db_url, users.customer, users.agent, f"Cancel {time.time_ns()}", [(users.customer, "Anyone?", False)]
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent)
        await agent.open(f"/?t={ticket_id}")
        await agent.should_see(marker="composer", retries=WAIT)
        await eventually(lambda: bubble_with(agent, "Anyone?") is not None, "the thread")
        await attach(agent, ("a.png", "image/png", png(20, 20)), ("b.txt", "text/plain", b"notes"))
        await eventually(lambda: count(agent, "pending-file") == 2, "two chips")
        first_remove = agent.find(marker="remove-file").elements.pop()
        UserInteraction(agent, {first_remove}, None).click()  # one removed before sending
        await eventually(lambda: count(agent, "pending-file") == 1, "one chip left")
        proxy.set_mode("drop")
        send(agent, "Sent from the train")
        await eventually(
            lambda: "attachment-progress" in markers_in(bubble_with(agent, "Sent from the train")),
            "the upload progress",
            10,
        )
        engine = engine_of(agent)
        message = next(m for m in engine.cache.thread(ticket_id, limit=10) if m.content == "Sent from the train")
        queued = [Path(r["local_path"]) for r in engine.cache.attachments(message.id)]
        assert len(queued) == 1 and queued[0].exists()
        await agent.should_see("Offline", retries=WAIT)
        await eventually(
            lambda: any(
                getattr(d, "text", "") == "Offline · 0 of 1 uploaded"
                for d in bubble_with(agent, "Sent from the train").descendants()
            ),
            "offline state",
            30,
        )
        agent.find(marker="cancel-upload").click()
        await eventually(lambda: bubble_with(agent, "Sent from the train") is None, "the bubble to go")
        assert engine.cache.message(message.id) is None and engine.cache.attachments(message.id) == []
        assert not queued[0].exists(), "the queued copy of the file is gone"
        proxy.set_mode("pass")
        await agent.should_see("Online", retries=WAIT)
    with psycopg.connect(stack.db_url) as conn:
        assert conn.execute("select count(*) from messages where id = %s", (message.id,)).fetchone() == (0,)


async def test_cache_size_setting_is_saved_and_applied_live(
    app_data: Path, users: Users, stack: StackProcess, tmp_path: Path
) -> None:
    ticket_id = seed_ticket(
        stack.db_url,
        users.customer2,
        users.agent2,
        f"Big files {time.time_ns()}",
        [(users.customer2, "Two photos coming", False)],
    )
    async with running_app() as agent:
        await sign_in(agent, users.agent2)
        customer = another_user()
        await sign_in(customer, users.customer2)
        photos = []
        for i in range(2):
            photos.append(tmp_path / f"photo{i}.png")
            photos[-1].write_bytes(png(8, 8) + bytes(700_000))  # trailing bytes: a 700 KB file
        await eventually(lambda: engine_of(customer).cache.ticket(ticket_id) is not None, "the customer's ticket", 60)
        sent = engine_of(customer).commands.send_message(ticket_id, "the photos", files=photos)
        await engine_of(customer).sync_once()
        engine = engine_of(agent)
        await eventually(lambda: len(engine.cache.attachments(sent.id)) == 2, "the agent's attachment rows", 60)
        ids = [str(r["id"]) for r in engine.cache.attachments(sent.id)]
        for attachment_id in ids:
            assert (await agent.http_client.get(f"/attachment/{attachment_id}")).status_code == 200
        assert {i for i, *_ in engine.cache.cached_attachment_files()} == set(ids)

        await agent.open("/settings")
        agent.find(marker="cache-limit").elements.pop().value = 1
        agent.find(marker="cache-apply").click()
        await eventually(lambda: len(engine.cache.cached_attachment_files()) == 1, "the cache to shrink now")
        assert engine.attachment_cache_bytes == 1024 * 1024
        assert not (engine.cache.files_dir / ids[0]).exists(), "the least recently opened file went"
        assert (engine.cache.files_dir / ids[1]).exists()
        await eventually(
            lambda: "Saved: at most 1 MB." in agent.find(marker="cache-usage").elements.pop().text, "the confirmation"
        )
        agent.find(marker="cache-limit").elements.pop().value = 0
        agent.find(marker="cache-apply").click()
        await eventually(
            lambda: "Choose between" in agent.find(marker="cache-usage").elements.pop().text, "the refusal of 0 MB"
        )
        assert engine.attachment_cache_bytes == 1024 * 1024, "a refused value changes nothing"
    async with running_app() as again:  # the saved bound applies to the next start
        await again.open("/")
        await again.should_see(marker="ticket-count", retries=WAIT)
        assert engine_of(again).attachment_cache_bytes == 1024 * 1024


def test_a_file_opened_with_the_system_app_is_named_by_its_type(tmp_path: Path) -> None:
    """The native window opens a file with the system's application for its name's extension: a file another
    user called `invoice.exe` and uploaded as a PDF must open as a PDF, never run as a program."""
    from supportchat_app.components.attachment_view import opened_copy

    source = tmp_path / "blob"
    source.write_bytes(PDF)
    row = {"id": "a", "name": "invoice.exe", "mime": "application/pdf"}
    assert opened_copy(source, tmp_path / "open" / "a", row).name == "invoice.exe.pdf"
    row = {"id": "b", "name": "../../Report 2026.pdf", "mime": "application/pdf"}
    copy = opened_copy(source, tmp_path / "open" / "b", row)
    assert copy.parent == tmp_path / "open" / "b" and copy.name.endswith(".pdf") and copy.read_bytes() == PDF
