"""Attaching files in the composer: the paperclip button, paste (a screenshot from the clipboard) and
drag-and-drop onto the open ticket, several files per message shown as removable chips before sending.

The browser hands each file to a hidden Quasar uploader (NiceGUI's `ui.upload`), which posts it to this app
process like any other request (behind the launch guard). Quasar refuses a file over the bucket's size limit
before sending a byte; this side checks every file again (size, type, name) with the rule the sync engine and
the server use, and writes an accepted one into the ticket's staging folder (supportchat_app/staged.py). A
refused file is shown as a red chip with its reason and never queued. Chips are drawn from that folder,
so they survive switching tickets like the text draft does.

The bubble side (thumbnails, file chips, upload progress) is in attachment_view.py.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nicegui import events, ui

from supportchat_app import staged
from sync import attachments

if TYPE_CHECKING:
    from supportchat_app.components.composer import Composer

CAPTION_MAX = 300

# a clipboard screenshot arrives as "image.png": give it a name that says what and when
_PASTE_JS = """(e) => {
  const files = [...((e.clipboardData || {}).files || [])];
  if (!files.length) return;
  e.preventDefault();
  const stamp = new Date().toISOString().slice(0, 19).replace('T', ' ').replaceAll(':', '.');
  const named = files.map((f, i) => f.name === 'image.png'
    ? new File([f], `Screenshot ${stamp}${i ? ' (' + (i + 1) + ')' : ''}.png`, {type: f.type}) : f);
  const up = e.currentTarget.querySelector('.sc-uploader');
  if (up) getElement(up.id.slice(1)).$refs.qRef.addFiles(named);
}"""
_DRAG_JS = """(e) => {
  if (![...(e.dataTransfer || {}).types || []].includes('Files')) return;
  e.preventDefault(); e.dataTransfer.dropEffect = 'copy';
  e.currentTarget.classList.add('sc-dragging');
}"""
_LEAVE_JS = """(e) => {
  if (!e.currentTarget.contains(e.relatedTarget)) e.currentTarget.classList.remove('sc-dragging');
}"""
_DROP_JS = """(e) => {
  e.currentTarget.classList.remove('sc-dragging');
  const files = [...((e.dataTransfer || {}).files || [])];
  if (!files.length) return;
  e.preventDefault();
  const up = e.currentTarget.querySelector('.sc-uploader');
  if (up) getElement(up.id.slice(1)).$refs.qRef.addFiles(files);
}"""
_REJECTED_JS = """(entries) => emit(entries.map(
  (r) => ({name: r.file.name, size: r.file.size, why: r.failedPropValidation})))"""
_PICK_JS = "() => getElement(%(uploader)s).$refs.qRef.pickFiles()"

CSS = """
.sc-dragging { outline: 2px dashed var(--sc-own); outline-offset: -6px; }
.sc-file-chip { border: 1px solid var(--sc-line); border-radius: 10px; background: var(--sc-panel); }
.sc-file-chip.sc-refused { border-color: var(--q-negative); color: var(--q-negative); }
"""
ui.add_css(CSS, shared=True)  # once in every page's head, not one more <style> per opened ticket's composer


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def type_icon(mime: str) -> str:
    if mime.startswith("image/"):
        return "image"
    if mime == "application/pdf":
        return "picture_as_pdf"
    if mime in ("text/csv",) or "spreadsheet" in mime or "excel" in mime:
        return "table_chart"
    if mime == "application/zip":
        return "folder_zip"
    if mime.startswith("text/") or "word" in mime or "opendocument.text" in mime or mime == "application/json":
        return "description"
    return "insert_drive_file"


def caption(names: list[str]) -> str:
    """The text of a message sent with files and no words (the server needs some text; previews and mails
    show it). A bubble whose text is exactly this shows only its files."""
    text = "📎 " + ", ".join(names)
    return text if len(text) <= CAPTION_MAX else text[: CAPTION_MAX - 1] + "…"


def _reason(why: str, size: int) -> str:
    if why == "max-file-size":
        return attachments.refusal("f.png", size, "image/png") or "The file is too large."
    return "The file cannot be attached."


class AttachmentTray(ui.column):
    """The pending files of one ticket's composer, with the hidden uploader they come through."""

    def __init__(self, files_dir: Path, ticket_id: str, on_change: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.files_dir, self.ticket_id = files_dir, ticket_id
        self._on_change = on_change or (lambda: None)
        self.refused: list[tuple[str, str]] = []  # (file name, reason), shown until dismissed or sent
        self.classes("w-full gap-1")
        with self:
            self.chips = ui.row().classes("w-full gap-2").props('data-testid="pending-files"').mark("pending-files")
            self.uploader = (
                ui.upload(
                    multiple=True, auto_upload=True, max_file_size=attachments.MAX_BYTES, on_upload=self._received
                )
                .classes("hidden sc-uploader")
                .props('data-testid="attach-input"')
                .mark("attach-input")
            )
        self.uploader.on("rejected", self._rejected, js_handler=_REJECTED_JS)
        self.uploader.on("finish", self.uploader.reset)
        self.draw()

    @classmethod
    def into(cls, composer: Composer, drop_target: ui.element, files_dir: Path, ticket_id: str) -> AttachmentTray:
        """Put a tray into a composer: chips above the text, the paperclip beside it, paste into the composer
        and drops onto ``drop_target`` (the open ticket) attach files."""
        with composer.tray_slot:
            tray = cls(files_dir, ticket_id)
        with composer.tools_slot:
            tray.button()
        composer.has_files = tray.has_files
        tray.accept_paste(composer)
        tray.accept_drops(drop_target)
        return tray

    # wiring ---------------------------------------------------------------------------------------------
    def button(self) -> ui.button:
        return (
            ui.button(icon="attach_file")
            .props('flat round dense color=grey-7 data-testid="attach"')
            .mark("attach")
            .tooltip("Attach files (or paste / drop them here)")
            .on("click", js_handler=_PICK_JS % {"uploader": self.uploader.id})
        )

    @staticmethod
    def accept_paste(element: ui.element) -> None:
        """Files pasted anywhere inside ``element`` go to the uploader inside it."""
        element.on("paste", js_handler=_PASTE_JS)

    @staticmethod
    def accept_drops(element: ui.element) -> None:
        """Files dropped anywhere on ``element`` go to the uploader inside it (once per element: the composer
        inside may be rebuilt, the handlers find its current uploader)."""
        if "sc-dropzone" in element.classes:
            return
        element.classes(add="sc-dropzone")
        element.on("dragover", js_handler=_DRAG_JS)
        element.on("dragleave", js_handler=_LEAVE_JS)
        element.on("drop", js_handler=_DROP_JS)

    # state ------------------------------------------------------------------------------------------------
    def files(self) -> list[staged.Staged]:
        return staged.listing(self.files_dir, self.ticket_id)

    def has_files(self) -> bool:
        return bool(self.files())

    def sent(self, files: list[staged.Staged]) -> None:
        """The message went into the queue with these files (copied there): drop the staged copies."""
        staged.clear(self.files_dir, self.ticket_id, [f.token for f in files])
        if files or self.refused:  # a plain reply leaves an empty tray as it is: a redraw is an update of the page
            self.refused.clear()
            self.draw()

    async def _received(self, e: events.UploadEventArguments) -> None:
        name, size = e.file.name, e.file.size()
        try:
            target = staged.reserve(self.files_dir, self.ticket_id, name, size)
        except ValueError as exc:
            self._refuse(name, str(exc))
            return
        incoming = target.with_name(staged.INCOMING)
        try:
            await e.file.save(incoming)
            os.replace(incoming, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                incoming.unlink()
                target.parent.rmdir()
            self._refuse(name, f"It could not be stored on this computer ({exc.strerror or exc}).")
            return
        self.draw()

    def _rejected(self, e: events.GenericEventArguments) -> None:
        for entry in e.args if isinstance(e.args, list) else []:
            if isinstance(entry, dict):
                reason = _reason(str(entry.get("why")), int(entry.get("size") or 0))
                self._refuse(str(entry.get("name", "file")), reason)

    def _refuse(self, name: str, reason: str) -> None:
        self.refused.append((name, reason))
        ui.notify(f"{name} was not attached: {reason}", type="negative", multi_line=True)
        self.draw()

    def _remove(self, token: str) -> None:
        staged.remove(self.files_dir, self.ticket_id, token)
        self.draw()

    def _dismiss(self, index: int) -> None:
        if 0 <= index < len(self.refused):
            del self.refused[index]
        self.draw()

    # drawing ----------------------------------------------------------------------------------------------
    def draw(self) -> None:
        self.chips.clear()
        files = self.files()
        with self.chips:
            for file in files:
                self._chip(file)
            for index, (name, reason) in enumerate(self.refused):
                self._refused_chip(index, name, reason)
        self.chips.set_visibility(bool(files or self.refused))
        self._on_change()

    def _chip(self, file: staged.Staged) -> None:
        with (
            ui.row(align_items="center")
            .classes("sc-file-chip gap-1 pl-2 pr-1 py-1 no-wrap max-w-[280px]")
            .props('data-testid="pending-file"')
            .mark("pending-file")
        ):
            ui.icon(type_icon(file.mime), size="18px").classes("opacity-70")
            ui.label(file.name).classes("text-sm ellipsis")
            ui.label(size_text(file.size)).classes("text-xs opacity-60 whitespace-nowrap")
            ui.button(icon="close", on_click=lambda token=file.token: self._remove(token)).props(
                'flat round dense size=xs data-testid="remove-file"'
            ).mark("remove-file").tooltip("Remove")

    def _refused_chip(self, index: int, name: str, reason: str) -> None:
        with (
            ui.row(align_items="center")
            .classes("sc-file-chip sc-refused gap-1 pl-2 pr-1 py-1 no-wrap max-w-[520px]")
            .props('data-testid="refused-file"')
            .mark("refused-file")
        ):
            ui.icon("block", size="18px")
            ui.label(f"{name}: {reason}").classes("text-sm")
            ui.button(icon="close", on_click=lambda i=index: self._dismiss(i)).props("flat round dense size=xs")
