"""Saving an attachment from the app's native window (pywebview): the window's own save dialog, then a copy of
the file the sync engine has (downloaded on demand, as Open does).

Why not the page's download link, as in a browser: pywebview's Qt backend handles a download by asking for a
path and then calling ``setPath`` on the download, which Qt 6's ``QWebEngineDownloadRequest`` no longer has; the
window process dies with AttributeError after the dialog and the whole app quits. So in the window, Save asks
through pywebview's supported ``create_file_dialog`` (NiceGUI's window proxy) and writes the file itself, and the
window does not accept downloads at all (``ALLOW_DOWNLOADS`` stays off in main.py).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import webview
from nicegui import app, ui

from sync.attachments import EXTENSIONS, key_name, windows_device

if TYPE_CHECKING:
    from sync.engine import SyncEngine


def typed_name(name: str, mime: str) -> str:
    """A safe file name for ``name`` ending in its mime type's extension (``invoice.exe`` sent as a PDF becomes
    ``invoice.exe.pdf``, of a type the bucket does not take ``invoice.exe.bin``): never a program by its name, never
    a Windows device. The extension comes from the bucket's own types (``EXTENSIONS``), whatever type the server
    stored: not from ``mimetypes``, which on Windows also reads the registry's types."""
    extension = EXTENSIONS.get(mime.split(";", 1)[0].strip().lower(), ".bin")
    stem = key_name(name).replace(":", "_")  # Storage keys allow it; on Windows it names a drive
    if windows_device(stem):  # a copy written there would be lost
        stem = "_" + stem
    return stem if stem.lower().endswith(extension) else stem + extension


def downloads_folder() -> Path:
    folder = Path.home() / "Downloads"
    return folder if folder.is_dir() else Path.home()


async def save_natively(engine: SyncEngine, attachment_id: str, name: str, mime: str) -> None:
    """Ask where (the window's save dialog, proposing the Downloads folder) and copy the file there."""
    window = app.native.main_window
    if window is None:
        return
    chosen = await window.create_file_dialog(
        webview.FileDialog.SAVE, directory=str(downloads_folder()), save_filename=typed_name(name, mime)
    )
    if not chosen:  # cancelled
        return
    target = Path(chosen if isinstance(chosen, str) else chosen[0])
    try:
        source = await engine.attachments.file(attachment_id)
        await asyncio.to_thread(shutil.copyfile, source, target)
    except Exception as exc:  # offline and not downloaded, refused, gone, or the folder is not writable
        ui.notify(f"{name} could not be saved: {exc}", type="warning")
        return
    ui.notify(f"Saved {target.name}", type="positive")
