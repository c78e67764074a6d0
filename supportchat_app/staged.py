"""Files picked for a reply but not sent yet (the composer's pending chips), kept on disk per ticket.

They live in the signed-in user's cache files folder, ``staging/<ticket id>/<token>/<file name>``, so they
survive switching tickets or restarting the app like the text draft does, go away with the user's cache,
and are never visible to another account's session. The folder listing *is* the state: the composer
reads it whenever it is drawn. A send hands the paths to ``SyncEngine.send_message`` (which copies each
file into its upload queue) and then removes them here.

Every file is checked with ``sync.attachments.refusal`` (the bucket's size and type limits, name rules)
before a byte is written, so a refused file never reaches the queue and the user sees why at once.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sync import attachments

INCOMING = ".incoming"  # a file being received is written under this name, then renamed to its own
_TOKEN = re.compile(r"^[0-9]{20}-[0-9a-f]{8}$")


@dataclass(frozen=True)
class Staged:
    token: str
    path: Path
    name: str
    size: int
    mime: str

    @property
    def is_image(self) -> bool:
        return self.mime in attachments.THUMBNAIL_MIME_TYPES


def folder(files_dir: Path, ticket_id: str) -> Path:
    return files_dir / "staging" / str(uuid.UUID(ticket_id))


def check(name: str, size: int, *, windows: bool = os.name == "nt") -> str | None:
    """Why this file cannot be attached (the reason shown to the user), or None. A name can come from a colleague
    (a canned reply's file is staged under its own name), so on Windows one that would not be a file in the folder
    is refused too: with a colon (a stream of another file, or a drive) or a device's name (``CON.pdf``)."""
    if name in (".", "..", INCOMING) or Path(name).name != name:
        return "The file name must be 1 to 255 characters without slashes."
    if windows and (":" in name or attachments.windows_device(name)):
        return "Windows cannot keep a file with this name (a colon, or a device's name such as CON)."
    return attachments.refusal(name, size, attachments.mime_of(name))


def reserve(files_dir: Path, ticket_id: str, name: str, size: int) -> Path:
    """A new path to write an accepted file to (its folder is created); ValueError with the reason if refused."""
    reason = check(name, size)
    if reason is not None:
        raise ValueError(reason)
    token = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    target = folder(files_dir, ticket_id) / token
    target.mkdir(parents=True, mode=0o700)
    return target / name


def listing(files_dir: Path, ticket_id: str) -> list[Staged]:
    """The ticket's staged files in the order they were added (half-written ones, without a file, skipped)."""
    base = folder(files_dir, ticket_id)
    if not base.is_dir():
        return []
    found = []
    for token_dir in sorted(base.iterdir()):
        if not _TOKEN.match(token_dir.name) or not token_dir.is_dir():
            continue
        for file in token_dir.iterdir():
            if file.is_file() and file.name != INCOMING:
                found.append(
                    Staged(token_dir.name, file, file.name, file.stat().st_size, attachments.mime_of(file.name))
                )
                break
    return found


def remove(files_dir: Path, ticket_id: str, token: str) -> None:
    if not _TOKEN.match(token):
        raise ValueError(f"not a staged file: {token!r}")
    shutil.rmtree(folder(files_dir, ticket_id) / token, ignore_errors=True)


def clear(files_dir: Path, ticket_id: str, tokens: list[str]) -> None:
    for token in tokens:
        remove(files_dir, ticket_id, token)
