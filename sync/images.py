"""Which picture a file is, by its first bytes: PNG, JPEG, GIF or WebP, else none.

Shared by the avatar check and download (sync/avatars.py) and the app's picture route
(supportchat_app/pictures.py), so a file is a picture by its content, never by its name. The four formats
have fixed signatures, so this is a few comparisons, not a reason for an imaging library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

HEAD_BYTES: Final = 12  # enough for every signature below (WebP's "WEBP" ends at byte 12)
_SIGNATURES: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
)


def sniff(data: bytes) -> tuple[str, str] | None:
    """(mime, extension) of a PNG, JPEG, GIF or WebP by its signature, else None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    for magic, mime, ext in _SIGNATURES:
        if data.startswith(magic):
            return mime, ext
    return None


def sniff_file(path: Path) -> tuple[str, str] | None:
    """``sniff`` of a file's first bytes; None too if it cannot be read."""
    try:
        with path.open("rb") as file:
            return sniff(file.read(HEAD_BYTES))
    except OSError:
        return None
