"""Which picture a file is, by its first bytes: PNG, JPEG, GIF or WebP, else none; and how large it says it is.

Shared by the avatar check and download (sync/avatars.py) and the app's picture route
(supportchat_app/pictures.py), so a file is a picture by its content, never by its name. The four formats
have fixed signatures, so this is a few comparisons, not a reason for an imaging library.

``dimensions`` reads the width and height a picture's header declares, where a browser reads them before it
allocates the bitmap: a PNG's IHDR, a GIF's screen or its first frame when that is larger (browsers enlarge the
picture to it), a WebP's VP8/VP8L frame or VP8X canvas, a JPEG's frame header (SOFn) after any metadata segments
(walked by their lengths, with seeks, and past bytes that are no segment, as libjpeg skips them). A few kilobytes
of one colour can declare a gigabyte of bitmap (a decompression bomb), so what someone else sent is checked against
``MAX_AVATAR_SIDE`` (and attachments against the thumbnails' bound) before a page may decode it. A header that
declares no size gives None: a browser cannot draw it either. A header whose size the reader could not read to the
end gives ``UNKNOWN_SIZE``, larger than every bound, so every check refuses it: the file ends first (a GIF with no
frame, a JPEG with no frame header), or the walk reaches its bound first (``_MAX_STEPS`` GIF blocks or JPEG
segments). A browser has no such bound, so answering the screen's size or "none" there would let a small file put
a huge frame past the check. Hand-written rather than Pillow's ``Image.open``:
Pillow refuses some headers a browser draws (a bad chunk checksum), and a check that a parser skips must not be the
one that lets a file through.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO, Final

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


MAX_AVATAR_SIDE: Final = 4096  # at most 64 MB of bitmap; a picture shown at 40 px needs far less
# JPEG frame headers: SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC), which share the range
_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_CHUNK: Final = 64 * 1024  # read at a time while looking for a JPEG marker
# GIF blocks and sub-blocks before the first frame, JPEG markers and fill bytes before the frame header: a real
# picture has a few dozen; past this the reader stops and answers UNKNOWN_SIZE (a walk of 2-byte steps through a
# 25 MB attachment took seconds)
_MAX_STEPS: Final = 1 << 16
UNKNOWN_SIZE: Final = (0xFFFF_FFFF, 0xFFFF_FFFF)  # a size not read to the end: refused as too large by every check


class _Unread(Exception):
    """The size a browser would find is past the end of the file or past the reader's bound."""


class _Steps:
    """What is left of one walk's ``_MAX_STEPS``: each block, segment or skipped byte takes one."""

    def __init__(self) -> None:
        self.left = _MAX_STEPS

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _Unread


def avatar_too_large(size: tuple[int, int] | None) -> bool:
    """Whether a picture of this declared size is more than an avatar may be (None: it declares none)."""
    return size is not None and max(size) > MAX_AVATAR_SIDE


def dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) the picture in ``data`` declares, or None if it declares none."""
    return _dimensions(io.BytesIO(data))


def dimensions_of(path: Path) -> tuple[int, int] | None:
    """``dimensions`` of a file, reading only its header; None too if it cannot be read."""
    try:
        with path.open("rb") as file:
            return _dimensions(file)
    except OSError:
        return None


def _dimensions(file: BinaryIO) -> tuple[int, int] | None:
    head = file.read(30)
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return struct.unpack(">II", head[16:24]) if head[12:16] == b"IHDR" else None
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return _gif(file, head)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp(head)
        if head.startswith(b"\xff\xd8"):
            return _jpeg(file)
    except (struct.error, _Unread):  # cut short, or too long a walk: not "no size", which a check would let pass
        return UNKNOWN_SIZE
    return None


def _gif(file: BinaryIO, head: bytes) -> tuple[int, int]:
    width, height, flags = struct.unpack("<HHB", head[6:11])
    colours = 3 << ((flags & 7) + 1) if flags & 0x80 else 0  # the global colour table's bytes
    file.seek(13 + colours)
    steps = _Steps()
    while (kind := file.read(1)) == b"\x21" and file.read(1):  # an extension: its label, sub-blocks, an empty one
        steps.take()
        while (length := file.read(1)) and length != b"\0":
            file.seek(length[0], io.SEEK_CUR)
            steps.take()
    if kind != b"\x2c":  # the end, the trailer or bytes that are no block before any frame: no size to trust
        raise _Unread
    # the first frame: a browser enlarges the picture to hold it
    left, top, frame_width, frame_height = struct.unpack("<HHHH", file.read(8))
    return max(width, left + frame_width), max(height, top + frame_height)


_WEBP_HEAD: Final = {b"VP8 ": 30, b"VP8L": 25, b"VP8X": 30}  # bytes of the file up to the end of its size


def _webp(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if len(head) < _WEBP_HEAD.get(chunk, 16):
        raise _Unread
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _jpeg(file: BinaryIO) -> tuple[int, int] | None:
    file.seek(2)
    steps = _Steps()
    while True:
        code = _next_marker(file, steps)
        if code == 0x01 or 0xD0 <= code <= 0xD7:  # markers without a length
            continue
        if code in (0xD9, 0xDA):  # the end, or scan data before any frame header
            return None
        (length,) = struct.unpack(">H", file.read(2))
        if code in _SOF:
            height, width = struct.unpack(">xHH", file.read(5))
            return width, height
        if length < 2:
            return None
        file.seek(length - 2, io.SEEK_CUR)


def _next_marker(file: BinaryIO, steps: _Steps) -> int:
    """The next marker's code, skipping fill bytes and, as libjpeg does (a browser's decoder), any bytes that are not
    a marker between segments: a walk that stopped there would miss a frame header the browser finds. _Unread at the
    end of the file or of ``steps`` (each 0xFF read takes one; bytes without one are skipped a chunk at a time)."""
    while byte := file.read(1):
        steps.take()
        if byte != b"\xff":  # not a marker: on to the next 0xFF, a chunk at a time
            while chunk := file.read(_CHUNK):
                found = chunk.find(b"\xff")
                if found >= 0:
                    file.seek(found - len(chunk), io.SEEK_CUR)
                    break
            continue
        code = file.read(1)
        while code == b"\xff":
            steps.take()
            code = file.read(1)
        if code and code != b"\0":  # 0xFF 0x00 is a stuffed byte, not a marker
            return code[0]
    raise _Unread


def sniff_file(path: Path) -> tuple[str, str] | None:
    """``sniff`` of a file's first bytes; None too if it cannot be read."""
    try:
        with path.open("rb") as file:
            return sniff(file.read(HEAD_BYTES))
    except OSError:
        return None
