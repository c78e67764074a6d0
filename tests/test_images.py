"""A picture's size as its header declares it (sync/images.py ``dimensions``), read the way a browser reads it before
decoding: what the app checks before it lets the page decode someone else's picture.

The bug this pins (review sec17b): avatars reached the page after a signature check only. A 1 MiB PNG can declare
16,000 x 16,000 pixels of one colour (zlib packs a thousand to one): 1 GB of bitmap for the page's renderer to
decode, in every agent's inbox row where that customer appears, without anyone clicking anything; the lightbox did
the same with a 25 MiB attachment (the thumbnail was already bounded, by Pillow). Here: the header's size of each
format, including the places a browser takes a larger size from (a GIF's first frame beyond its screen, a WebP's
extended canvas, a JPEG's frame header behind its metadata); and a header whose size cannot be read to the end (cut
short, or a walk past its bound) is refused, never taken for the size read so far."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from PIL import Image

from sync.images import UNKNOWN_SIZE, avatar_too_large, dimensions, dimensions_of


def _made(fmt: str, size: tuple[int, int], **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("GIF", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_the_size_of_a_real_picture(fmt: str, options: dict[str, object]) -> None:
    assert dimensions(_made(fmt, (321, 123), **options)) == (321, 123)


def test_a_jpeg_frame_behind_large_metadata_is_found() -> None:
    made = _made("JPEG", (40, 30))
    padding = b"\xff\xe1" + struct.pack(">H", 65535) + b"\0" * 65533  # an APP1 segment, as big as one can be
    assert dimensions(made[:2] + padding * 3 + made[2:]) == (40, 30)


def test_a_jpeg_frame_behind_bytes_that_are_no_segment_is_found() -> None:
    """libjpeg (a browser's decoder) skips bytes between segments that are no marker: so must the check."""
    made = _made("JPEG", (40, 30))
    sof = made.index(b"\xff\xc0")
    huge = made[: sof + 5] + struct.pack(">HH", 60_000, 60_000) + made[sof + 9 :]
    assert dimensions(huge[:sof] + b"junk" * 40_000 + huge[sof:]) == (60_000, 60_000)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG's signature and header chunk: all a browser reads before it allocates the bitmap."""
    ihdr = struct.pack(">II5B", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"


def test_a_bomb_declares_its_size_in_its_header() -> None:
    assert dimensions(png_declaring(16_000, 16_000)) == (16_000, 16_000)


def test_a_gif_frame_larger_than_its_screen_enlarges_the_picture() -> None:
    screen = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0, 0, 0)
    extension = b"\x21\xf9\x04\x00\x00\x00\x00\x00"  # graphic control, before the first frame
    frame = b"\x2c" + struct.pack("<HHHHB", 5, 0, 9000, 8000, 0)
    assert dimensions(screen + extension + frame) == (9005, 8000)


def test_a_webp_canvas_is_its_extended_header() -> None:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x10\0\0\0" + (30_000 - 1).to_bytes(3, "little")
    vp8x += (20_000 - 1).to_bytes(3, "little")
    assert dimensions(b"RIFF\0\0\0\0WEBP" + vp8x) == (30_000, 20_000)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a\n" + b"\0" * 32,
        b"\xff\xd8\xff\xe0" + b"\0" * 8,
        b"<svg/>",
    ],
)
def test_a_header_without_a_size_has_none(data: bytes) -> None:
    assert dimensions(data) is None  # no size a browser could read either: nothing to decode


SCREEN = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0, 0, 0)  # a 1 x 1 GIF screen, no colour table
HUGE_FRAME = b"\x2c" + struct.pack("<HHHHB", 0, 0, 60000, 60000, 0) + b"\x02\x02\x44\x01\x00\x3b"


def gif_behind_comments(comments: int) -> bytes:
    return SCREEN + b"\x21\xfe\x00" * comments + HUGE_FRAME


def test_a_gif_frame_behind_many_extension_blocks_is_not_taken_for_its_screen() -> None:
    """Regression (review17b): the reader stopped after 1,024 extension blocks and answered the screen's size; a
    browser has no such bound. 1,100 empty comment blocks (3 bytes each) in front of a 60,000 x 60,000 frame on a
    1 x 1 screen made a 3 KB avatar that passed ``avatar_too_large`` and the 60 MP attachment bound."""
    assert dimensions(gif_behind_comments(10)) == (60000, 60000)
    many = gif_behind_comments(1100)
    assert len(many) < 4000
    assert avatar_too_large(dimensions(many)), f"declared size read as {dimensions(many)}"


VP8X = b"RIFF\0\0\0\0WEBPVP8X" + struct.pack("<I", 10) + b"\x10\0\0\0"


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("a GIF cut inside its screen", b"GIF89a"),
        ("a GIF with a screen and no frame", SCREEN),
        ("a GIF cut inside an extension", SCREEN + b"\x21\xfe\x05ab"),
        ("a GIF cut inside its frame's descriptor", SCREEN + HUGE_FRAME[:5]),
        ("a GIF with a block that is no block before its frame", SCREEN + b"\x00" + HUGE_FRAME),
        ("a GIF's trailer before any frame", SCREEN + b"\x3b" + HUGE_FRAME),
        ("a PNG cut inside its header chunk", png_declaring(60_000, 60_000)[:20]),
        ("a WebP cut before its first chunk", b"RIFF\0\0\0\0WEBP"),
        ("a WebP cut inside its lossless header", b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f"),  # was an IndexError
        ("a WebP cut inside its canvas", VP8X + b"\0\0\0\0"),  # was read as 1 x 1
        ("a JPEG that ends before its frame header", _made("JPEG", (40, 30))[:20]),
    ],
)
def test_a_header_cut_short_before_its_size_is_refused(what: str, data: bytes) -> None:
    """Regression (review17b): a reader that ran out of bytes answered the screen's size or the bytes it had (a
    WebP's canvas cut after its width read as 1 pixel high): a small size, where the file's size is unknown."""
    assert dimensions(data) == UNKNOWN_SIZE, what
    assert avatar_too_large(dimensions(data)), what


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("a GIF extension of one-byte sub-blocks", SCREEN + b"\x21\xfe" + b"\x01\x00" * 100_000 + b"\x00" + HUGE_FRAME),
        ("a JPEG of restart markers", b"\xff\xd8" + b"\xff\xd0" * 100_000 + _made("JPEG", (40, 30))[2:]),
        ("a JPEG of fill bytes", b"\xff\xd8" + b"\xff" * 100_000 + _made("JPEG", (40, 30))[2:]),
        ("a JPEG of stuffed bytes", b"\xff\xd8" + b"\xff\x00" * 100_000 + _made("JPEG", (40, 30))[2:]),
    ],
)
def test_a_walk_past_its_bound_is_refused(what: str, data: bytes) -> None:
    """A walk of two-byte steps through a 25 MB attachment took seconds (this machine: 2 s for 8 MB), so each walk
    stops after ``_MAX_STEPS`` blocks, markers or fill bytes: and then answers "unknown", not the size it had."""
    assert dimensions(data) == UNKNOWN_SIZE, what


def test_a_real_picture_is_far_inside_the_bounds() -> None:
    extensions = b"\x21\xf9\x04\x00\x00\x00\x00\x00" + b"\x21\xfe\x03abc\x00" * 1000
    assert dimensions(SCREEN + extensions + HUGE_FRAME) == (60000, 60000)
    made = _made("JPEG", (40, 30))
    assert dimensions(made[:2] + b"\xff\xd0" * 1000 + made[2:]) == (40, 30)


def test_a_file_is_read_only_as_far_as_its_header(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(png_declaring(640, 480) + b"\0" * (8 * 1024 * 1024))
    assert dimensions_of(path) == (640, 480)
    assert dimensions_of(tmp_path / "missing.png") is None
