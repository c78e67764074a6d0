"""Attachments, the pure part: what may be queued, under which object key, and which cached files to
evict. No I/O here (the queue itself, in the cache and the pusher, uses these decisions).

- ``refusal`` checks a file before it is queued, against the `attachments` bucket's own limits
  (migration 20261129000400: 25 MiB, the listed mime types), so a file the server would refuse fails
  at once with its reason instead of after an offline queue drained. The server still decides.
- ``object_key`` gives the Storage key `<ticket_id>/<message_id>/<key name>`: Supabase Storage accepts
  only S3-safe ASCII in keys, so the user's file name is folded to it (the display name is kept apart,
  in the `attachments.name` column; migration 20261129000410).
- ``plan_eviction`` picks which downloaded files leave a size-bounded cache: least recently used first,
  never one that is pinned (still to upload, or open right now).
- ``thumbnail_path`` and ``open_folder`` name what the app makes of a file beside it in the cache's files folder
  (its thumbnail, the copy handed to the system's application), so whoever deletes a file finds them too. An id
  is part of a path only when ``is_attachment_id`` says it is a uuid: the id comes from the server, and a hostile
  one's ``../x`` would name a file outside the folder (review20 H1).
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

BUCKET = "attachments"
MAX_BYTES = 25 * 1024 * 1024
# the types the bucket takes (migration 20261129000400), each with the extension a copy on the user's disk gets
# (supportchat_app/components/native_files.py): a fixed table, not ``mimetypes``, which on Windows also reads the
# registry's types, so no type from the server ever names an extension that runs as a program
EXTENSIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "image/gif": ".gif",
        "image/webp": ".webp",
        "image/heic": ".heic",
        "application/pdf": ".pdf",
        "text/plain": ".txt",
        "text/csv": ".csv",
        "application/json": ".json",
        "application/zip": ".zip",
        "application/msword": ".doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
        "application/vnd.ms-excel": ".xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
        "application/vnd.oasis.opendocument.text": ".odt",
        "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    }
)
ALLOWED_MIME_TYPES = frozenset(EXTENSIONS)
# raster images a browser draws and Pillow reads: these get thumbnails and the lightbox. Each maps to the one
# Pillow decoder its thumbnail may use: the uploader declares the type and nothing checks the bytes, so an EPS
# (run through Ghostscript), TIFF, PSD or FITS file sent as image/png must never reach its own decoder.
THUMBNAIL_FORMATS: Final[Mapping[str, str]] = MappingProxyType(
    {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
)
THUMBNAIL_MIME_TYPES = frozenset(THUMBNAIL_FORMATS)
MAX_NAME_CHARS = 255
# Windows' device names, with any extension: ``CON.pdf`` is the console there, not a file
_DEVICE = re.compile(r"(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9]|LPT[0-9]) *(?:\..*)?", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.()!*' &$=@;:+,-]+")


def mime_of(name: str) -> str:
    """The type a file is queued and uploaded with, from its name (as the bucket's check sees it)."""
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def refusal(name: str, size: int, mime: str) -> str | None:
    """Why the server would refuse this file, or None. Checked before the file is queued."""
    base = mime.split(";", 1)[0].strip().lower()
    if not name.strip() or "/" in name or "\\" in name or len(name) > MAX_NAME_CHARS:
        return "The file name must be 1 to 255 characters without slashes."
    if size <= 0:
        return "The file is empty."
    if size > MAX_BYTES:
        return f"The file is {size / 1024 / 1024:.1f} MB; attachments may be at most {MAX_BYTES // 1024 // 1024} MB."
    if base not in ALLOWED_MIME_TYPES:
        return f"Files of type {base or 'unknown'} cannot be attached."
    return None


def windows_device(name: str) -> bool:
    """Whether Windows takes ``name`` for a device (the console, a port) instead of a file."""
    return _DEVICE.fullmatch(name) is not None


def key_name(display_name: str) -> str:
    """The user's file name folded to Storage's key characters: accents dropped, anything else
    unsafe (spaces kept) becomes `_`, never empty, never a dot segment."""
    folded = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode()
    safe = _UNSAFE.sub("_", folded).strip(" ")
    stem, dot, ext = safe.rpartition(".")
    if not stem.strip("._ "):
        safe = f"file{dot}{ext}" if dot and ext.strip("._ ") else "file"
    return safe[:200]


def object_key(ticket_id: str, message_id: str, display_name: str) -> str:
    return f"{ticket_id}/{message_id}/{key_name(display_name)}"


def is_attachment_id(value: object) -> bool:
    """True for a uuid in its canonical text form (what the server's uuid column sends); nothing else names a path."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def thumbnail_path(files_dir: Path, attachment_id: str) -> Path:
    """Where the app keeps an image attachment's thumbnail (``files_dir/thumbs/<id>.webp``)."""
    return files_dir / "thumbs" / f"{attachment_id}.webp"


def open_folder(files_dir: Path, attachment_id: str) -> Path:
    """The folder of the copy of an attachment opened with the system's application (``files_dir/open/<id>``)."""
    return files_dir / "open" / attachment_id


@dataclass(frozen=True)
class CachedFile:
    key: str
    size: int
    last_used: float
    pinned: bool = False


def plan_eviction(files: Sequence[CachedFile], budget: int) -> list[str]:
    """Keys to delete so that the cached bytes fit ``budget``: oldest use first, pinned files never."""
    total = sum(f.size for f in files)
    evict: list[str] = []
    for f in sorted((f for f in files if not f.pinned), key=lambda f: (f.last_used, f.key)):
        if total <= budget:
            break
        evict.append(f.key)
        total -= f.size
    return evict
