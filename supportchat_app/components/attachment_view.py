"""A message's files in its bubble: image thumbnails (opening the lightbox), other files as chips with type
icon, name, size, open and save; while an own message waits for its files, the upload progress. The lightbox
steps through every image of the thread, not only the message's own.

Bytes never travel inside the page: thumbnails and files are links to the app's guarded
``/attachment/<id>`` route (supportchat_app/blobs.py), which answers only the session whose cache holds
the file. Only the rows the cache has are drawn, and the cache holds what RLS let this user pull (a
customer never has an internal note's file); the route refuses an internal note's file to non-staff anyway.

Progress: each file is queued, uploading (the first one not yet on the server while online) or uploaded;
"Uploading 2 of 3", a bar per file moving with the bytes the resumable upload has sent (bytes / size, from
``engine.attachments.uploads``, updated in place every second) and one over the message's bytes. Cancel
discards the unsent message with all its files (a message goes out whole or not at all, see sync/README.md);
a file that already reached Storage is then an orphan object, removed by the server's orphan purge. The close
button beside a waiting file sends the message without it (``commands.cancel_file``: its copy and any partial upload
are removed; a text that was only the files' names loses its name; the last file cancels the message).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nicegui import app, ui

from supportchat_app.components.attachments import caption, size_text, type_icon
from supportchat_app.components.lightbox import Lightbox, Picture
from supportchat_app.components.native_files import save_natively, typed_name
from sync.attachments import THUMBNAIL_MIME_TYPES
from sync.models import Message, SyncState

if TYPE_CHECKING:
    from sync.engine import SyncEngine


class FileHost(Protocol):
    """What ``attach_files`` needs of a message bubble: a Protocol, so bubble.py (which shows the files) and this
    module (which draws them into the bubble) do not import each other."""

    own: bool
    body: ui.label | None
    files: AttachmentView | None
    files_slot: ui.column
    draw_files: Callable[[Message], None] | None


# a thumbnail that cannot load (offline and not cached, or not decodable) becomes a plain placeholder
_THUMB_ERROR_JS = "this.onerror=null; this.closest('.sc-thumb').classList.add('sc-thumb-missing');"
CSS = """
.sc-thumb { border-radius: 10px; overflow: hidden; cursor: zoom-in; background: var(--sc-other);
            border: 1px solid var(--sc-line); max-width: 240px; min-width: 64px; min-height: 48px; }
.sc-thumb img { display: block; max-width: 240px; max-height: 180px; object-fit: cover; }
.sc-thumb-missing img { display: none; }
.sc-thumb-missing::after { content: 'Image not available offline'; display: block; padding: 16px 12px;
                           font-size: 12px; opacity: 0.6; }
"""
# once in every page's head: added per bubble, each new bubble put one more <style> in the page (the whole document's
# style recalculated, and one more sheet to match against ever after)
ui.add_css(CSS, shared=True)


def attach_files(bubble: FileHost, engine: SyncEngine, message: Message, on_cancel: Callable[[str], None]) -> None:
    """Give a bubble its files (drawn now and on every ``bubble.show``); deleted messages have none."""

    def draw(current: Message) -> None:  # again whenever the bubble redraws itself (after an edit)
        if not current.deleted_at:
            with bubble.files_slot:
                bubble.files = AttachmentView(engine, current, own=bubble.own, body=bubble.body, on_cancel=on_cancel)

    bubble.draw_files = draw
    draw(message)


class AttachmentView(ui.column):
    def __init__(
        self,
        engine: SyncEngine,
        message: Message,
        *,
        own: bool,
        body: ui.element | None,
        on_cancel: Callable[[str], None],
    ) -> None:
        super().__init__()
        self.engine, self.message_id, self.own, self.body = engine, str(message.id), own, body
        self._on_cancel = on_cancel
        self._overall: ui.linear_progress | None = None
        self._bars: dict[str, tuple[ui.linear_progress, ui.label, dict[str, Any]]] = {}
        self._drawn: tuple[Any, ...] | None = None
        self.classes("gap-1 " + ("items-end" if own else "items-start"))
        self._message = message
        with self:
            self.content = ui.column().classes("gap-1 " + ("items-end" if own else "items-start"))
            # while an own message waits, its files follow the connection (offline / uploading) on their own
            waiting = own and message.local_state == "pending"
            self.watch = ui.timer(1.0, lambda: self.show(self._message)) if waiting else None
        self.show(message)

    def show(self, message: Message) -> None:
        self._message = message
        if self.watch is not None and message.local_state != "pending":
            self.watch.cancel()
            self.watch = None
        rows = self.engine.cache.attachments(self.message_id)
        connection = self.engine.status.state
        key = (tuple((r["id"], r["local_state"]) for r in rows), message.local_state, connection)
        if key == self._drawn:
            self._show_bytes()
            return
        self._drawn = key
        self.content.clear()
        self._overall, self._bars = None, {}
        self.set_visibility(bool(rows))
        if not rows:
            return
        if self.body is not None:
            self.body.set_visibility(message.content != caption([str(r["name"]) for r in rows]))
        images = [r for r in rows if r["mime"] in THUMBNAIL_MIME_TYPES]
        others = [r for r in rows if r["mime"] not in THUMBNAIL_MIME_TYPES]
        with self.content:
            if images:
                pictures = [Picture(str(r["id"]), str(r["name"])) for r in images]
                with ui.row().classes("gap-2 " + ("justify-end" if self.own else "justify-start")):
                    for index, row in enumerate(images):
                        self._thumb(row, pictures, index)
            for row in others:
                self._chip(row)
            if self.own and message.local_state == "pending":
                self._progress(rows, connection)

    def _thumb(self, row: dict[str, Any], pictures: list[Picture], index: int) -> None:
        holder = (
            ui.element("div")
            .classes("sc-thumb")
            .props(f'data-testid="attachment-thumb" data-attachment-id="{row["id"]}" role=button tabindex=0')
            .mark("attachment-thumb")
            .tooltip(f"{row['name']} · {size_text(int(row['size']))}")
        )
        holder.on("click", lambda: self._open_lightbox(str(row["id"]), pictures, index))
        with holder:
            image = ui.element("img").props("loading=lazy")
            image.props["onerror"] = _THUMB_ERROR_JS
            image.props["src"] = f"/attachment/{row['id']}/thumb"
            image.props["alt"] = str(row["name"])

    def _open_lightbox(self, attachment_id: str, own: list[Picture], index: int) -> None:
        """The lightbox over every image of the thread (as the cache has them now), opened at this one."""
        rows = self.engine.cache.ticket_attachments(str(self._message.ticket_id), sorted(THUMBNAIL_MIME_TYPES))
        mimes = {str(r["id"]): str(r["mime"]) for r in rows}
        save = None
        if app.native.main_window is not None:  # the window cannot download a link (components/native_files.py)

            async def save(p: Picture) -> None:
                await save_natively(self.engine, p.attachment_id, p.name, mimes.get(p.attachment_id, "image/png"))

        pictures = [Picture(str(r["id"]), str(r["name"])) for r in rows]
        ids = [p.attachment_id for p in pictures]
        if attachment_id in ids:
            Lightbox(pictures, ids.index(attachment_id), save=save)
        else:  # not in the cache's thread (yet): this message's own images
            Lightbox(own, index, save=save)

    def _chip(self, row: dict[str, Any]) -> None:
        attachment_id, name = str(row["id"]), str(row["name"])
        with (
            ui.row(align_items="center")
            .classes("sc-file-chip gap-2 pl-2 pr-1 py-1 no-wrap max-w-[320px]")
            .props(f'data-testid="attachment-chip" data-attachment-id="{attachment_id}"')
            .mark("attachment-chip")
        ):
            ui.icon(type_icon(str(row["mime"])), size="22px").classes("opacity-70")
            with ui.column().classes("gap-0 min-w-0"):
                ui.label(name).classes("text-sm ellipsis")
                ui.label(size_text(int(row["size"]))).classes("text-xs opacity-60")
            if app.native.main_window is not None:  # the window would send a new tab to the system browser
                ui.button(icon="open_in_new", on_click=lambda: self._open_natively(row)).props(
                    'flat round dense size=sm data-testid="open-file"'
                ).tooltip("Open")
            else:
                opener = ui.link(target=f"/attachment/{attachment_id}", new_tab=True).props('data-testid="open-file"')
                with opener:
                    ui.icon("open_in_new", size="18px").classes("p-1").tooltip("Open")
            if app.native.main_window is not None:  # the window cannot download a link (components/native_files.py)
                ui.button(
                    icon="download", on_click=lambda: save_natively(self.engine, attachment_id, name, str(row["mime"]))
                ).props('flat round dense size=sm data-testid="save-file"').tooltip("Save")
                return
            saver = ui.link(target=f"/attachment/{attachment_id}?download=1").props('data-testid="save-file"')
            saver.props["download"] = name
            with saver:
                ui.icon("download", size="18px").classes("p-1").tooltip("Save")

    async def _open_natively(self, row: dict[str, Any]) -> None:
        """Open with the system's application for its type: a copy named by its *type*'s extension (a file
        called `invoice.exe` sent as a PDF opens as `invoice.exe.pdf`, never as a program)."""
        try:
            path = await self.engine.attachments.file(str(row["id"]))
        except Exception as exc:  # offline, refused, gone
            ui.notify(f"{row['name']} cannot be opened right now: {exc}", type="warning")
            return
        target = opened_copy(path, self.engine.attachments.open_folder(str(row["id"])), row)
        await self.engine.attachments.opened(str(row["id"]))  # counted in the files' bound, like a thumbnail
        await asyncio.to_thread(open_with_system, target)

    def _progress(self, rows: list[dict[str, Any]], connection: SyncState) -> None:
        online = connection == "online"
        done = sum(1 for r in rows if r["local_state"] in ("uploaded", "sent"))
        total = len(rows)
        first_waiting = next((r["id"] for r in rows if r["local_state"] == "pending"), None)
        self._bars = {}
        with ui.column().classes("gap-1 w-64").props('data-testid="attachment-progress"').mark("attachment-progress"):
            with ui.row(align_items="center").classes("w-full gap-2 no-wrap text-xs"):
                ui.label(upload_count(done, total, connection)).classes("grow opacity-70").props(
                    'data-testid="upload-count"'
                ).mark("upload-count")
                ui.button("Cancel", on_click=lambda: self._on_cancel(self.message_id)).props(
                    'flat dense size=sm no-caps color=negative data-testid="cancel-upload"'
                ).mark("cancel-upload").tooltip("Don't send this message and its files")
            self._overall = ui.linear_progress(value=0.0, show_value=False, size="4px").props("rounded")
            for row in rows:
                state = str(row["local_state"])
                if state in ("uploaded", "sent"):
                    icon, label = "cloud_done", "uploaded"
                elif state == "failed":
                    icon, label = "error", "refused"
                elif online and row["id"] == first_waiting:
                    icon, label = "cloud_upload", "uploading…"
                else:
                    icon, label = "schedule", file_waiting(connection)
                with ui.column().classes("w-full gap-0"):
                    with ui.row(align_items="center").classes("w-full gap-1 no-wrap text-xs opacity-70"):
                        ui.icon(icon, size="14px")
                        ui.label(str(row["name"])).classes("ellipsis grow")
                        state_label = (
                            ui.label(label).props(f'data-testid="file-state" data-state="{state}"').mark("file-state")
                        )
                        if state not in ("uploaded", "sent"):
                            self._cancel_file_button(row)
                    bar = (
                        ui.linear_progress(value=0.0, show_value=False, size="2px")
                        .props(f'data-testid="file-progress" data-attachment-id="{row["id"]}"')
                        .mark("file-progress")
                    )
                self._bars[str(row["id"])] = (bar, state_label, row)
        self._show_bytes()

    def _cancel_file_button(self, row: dict[str, Any]) -> None:
        ui.button(icon="close", on_click=lambda: self._cancel_file(str(row["id"]))).props(
            f'flat round dense size=xs data-testid="cancel-file" data-attachment-id="{row["id"]}"'
        ).mark("cancel-file").tooltip(f"Send the message without {row['name']}")

    def _cancel_file(self, attachment_id: str) -> None:
        """Send the message without this file. A message whose text is its files' names gets the remaining
        names; cancelling its last file cancels the message."""
        rows = self.engine.cache.attachments(self.message_id)
        rest = [str(r["name"]) for r in rows if r["id"] != attachment_id]
        captioned = self._message.content == caption([str(r["name"]) for r in rows])
        if captioned and not rest:
            self._on_cancel(self.message_id)
            return
        try:
            self.engine.commands.cancel_file(attachment_id, caption(rest) if captioned else None)
        except ValueError as exc:
            ui.notify(str(exc), type="warning")

    def _show_bytes(self) -> None:
        """Each file's bar as bytes on the server / size (from the upload running now), the message's bar over
        all its files' bytes; updated in place every second, never redrawing the thumbnails."""
        if self._overall is None:
            return
        uploads = self.engine.attachments.uploads
        sent_total = size_total = 0
        for bar, state_label, row in self._bars.values():
            size = max(int(row["size"]), 1)
            if row["local_state"] in ("uploaded", "sent"):
                sent = size
            else:
                now = uploads.sent(str(row["id"]))
                sent = min(now[0], size) if now is not None else 0
                if now is not None and row["local_state"] == "pending":
                    state_label.set_text(f"{size_text(sent)} of {size_text(size)}")
            bar.set_value(sent / size)
            bar.props(f'data-sent="{sent}" data-size="{size}"')
            sent_total += sent
            size_total += size
        self._overall.set_value(sent_total / max(size_total, 1))


def opened_copy(source: Path, folder: Path, row: dict[str, Any]) -> Path:
    """A copy of ``source`` in ``folder`` with a safe name ending in its mime type's extension."""
    target = folder / typed_name(str(row["name"]), str(row["mime"]))
    folder.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(source, target)
    return target


def open_with_system(path: Path) -> None:
    if sys.platform == "win32":
        os.startfile(path)  # type: ignore[attr-defined]
    else:
        subprocess.Popen(["open" if sys.platform == "darwin" else "xdg-open", str(path)])


def upload_count(done: int, total: int, connection: SyncState) -> str:
    """The progress line of an own message's files: how many reached Storage, and why the rest wait."""
    if done == total:
        return f"{total} of {total} uploaded"
    if connection == "online":
        return f"Uploading {done + 1} of {total}"
    return f"{'Signed out' if connection == 'needs-sign-in' else 'Offline'} · {done} of {total} uploaded"


def file_waiting(connection: SyncState) -> str:
    """What a file that is not being uploaded now waits for."""
    if connection == "online":
        return "queued"  # behind the one uploading
    return "waiting for you to sign in again" if connection == "needs-sign-in" else "waiting for the connection"
