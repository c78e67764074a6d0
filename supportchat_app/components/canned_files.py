"""Files of canned replies (issue 14): on the canned replies page, the files a reply carries (attach, offline too
through the outbox: a pending file shows a clock until it is sent; and remove, for who may change the reply); in
the composer, picking a reply stages copies of its files as pending attachments of the new message, exactly as if
the agent had attached them, offline too (the files are kept on this device, sync/canned_files.py). A file not
downloaded yet is named in a notice instead of being silently dropped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from nicegui import events, ui

from supportchat_app import fmt, staged
from supportchat_app.components.attachments import AttachmentTray, size_text, type_icon
from sync import SyncError, attachments
from sync.engine import SyncEngine
from sync.workspace_rows import CannedFile, CannedReply


def stage_files(engine: SyncEngine, tray: AttachmentTray, reply: CannedReply) -> None:
    """Copy a picked reply's files into the composer's pending files (checked as the tray checks a file)."""
    missing: list[str] = []
    for file in engine.canned_files.files(reply.id):
        source = engine.canned_files.local(file)
        if source is None:
            missing.append(file.name)
            continue
        try:
            target = staged.reserve(tray.files_dir, tray.ticket_id, file.name, file.size)
            shutil.copyfile(source, target)
        except (OSError, ValueError) as exc:
            tray.refused.append((file.name, str(exc)))
    tray.draw()
    if missing:
        ui.notify(f"Not on this computer yet (they download after the next sync): {', '.join(missing)}", type="warning")


class CannedFilesRow(ui.row):
    """A canned reply's files as chips; with ``editable``, remove buttons and an Attach button."""

    def __init__(self, engine: SyncEngine, reply: CannedReply, editable: bool) -> None:
        super().__init__(wrap=True)
        self.engine, self.reply = engine, reply
        self.classes("w-full items-center gap-2").mark(f"canned-files-{reply.title}")
        files = engine.canned_files.files(reply.id)
        with self:
            for file in files:
                self._chip(file, editable)
            if editable:
                upload = (
                    ui.upload(auto_upload=True, max_file_size=attachments.MAX_BYTES, on_upload=self._received)
                    .classes("hidden")
                    .props('data-testid="canned-file-input"')
                    .mark(f"canned-file-input-{reply.title}")
                )
                ui.button("Attach file", icon="attach_file", on_click=lambda: upload.run_method("pickFiles")).props(
                    "flat dense no-caps size=sm"
                ).mark(f"canned-attach-{reply.title}")

    def _chip(self, file: CannedFile, editable: bool) -> None:
        with (
            ui.row(wrap=False)
            .classes("sc-file-chip items-center gap-1 pl-2 pr-1 py-0 no-wrap rounded bg-slate-500/15")
            .mark("canned-file", f"canned-file-{file.name}")
        ):
            ui.icon(type_icon(file.mime), size="16px").classes("opacity-70")
            ui.label(file.name).classes("text-xs ellipsis")
            ui.label(size_text(file.size)).classes("text-xs opacity-60")
            if file.local_state == "pending":  # added offline: the outbox sends it
                ui.icon("schedule", size="14px").classes("opacity-60").mark(f"canned-file-pending-{file.name}").tooltip(
                    "Not on the server yet: it is sent when you are online"
                )
            elif file.local_state == "failed":
                ui.icon("error", size="14px", color="negative").mark(f"canned-file-failed-{file.name}").tooltip(
                    f"Not saved: {file.error}"
                )
            if editable:
                ui.button(icon="close", on_click=lambda f=file: self._remove(f)).props("flat round dense size=xs").mark(
                    f"canned-file-remove-{file.name}"
                )

    async def _received(self, e: events.UploadEventArguments) -> None:
        with tempfile.TemporaryDirectory(prefix="canned-") as folder:
            path = Path(folder) / "upload"
            try:
                await e.file.save(path)
                await self.engine.canned_files.add(self.reply.id, path, e.file.name)
            except (ValueError, SyncError, OSError) as exc:
                ui.notify(fmt.plain_error(exc, f"attach {e.file.name}"), type="negative")
                return
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        ui.notify(f"{e.file.name} attached to “{self.reply.title}”.")

    async def _remove(self, file: CannedFile) -> None:
        try:
            await self.engine.canned_files.remove(file)
        except (SyncError, ValueError) as exc:
            ui.notify(fmt.plain_error(exc, f"remove {file.name}"), type="negative")
