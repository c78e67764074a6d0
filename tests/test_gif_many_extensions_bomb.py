"""A GIF whose first frame comes after more than 1,024 extension blocks escapes the size check (review17b).

sync/images.py reads a GIF's size as the larger of its screen and its first frame (browsers enlarge the picture to
the first frame), but stops looking after ``_MAX_GIF_BLOCKS`` extension blocks and then answers the screen's size.
A browser's decoder has no such bound: 1,100 empty comment blocks (3 bytes each) in front of a 60,000 x 60,000
frame on a 1 x 1 screen make a 3 KB avatar that passes ``avatar_too_large`` and the 60 MP attachment bound.
"""

from __future__ import annotations

import struct

from sync.images import avatar_too_large, dimensions

FRAME = b"\x2c" + struct.pack("<HHHHB", 0, 0, 60000, 60000, 0) + b"\x02\x02\x44\x01\x00\x3b"


def _gif(comments: int) -> bytes:
    return b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0, 0, 0) + b"\x21\xfe\x00" * comments + FRAME


def test_a_gif_frame_behind_many_extension_blocks_is_not_taken_for_its_screen() -> None:
    assert dimensions(_gif(10)) == (60000, 60000)
    many = _gif(1100)
    assert len(many) < 4000
    assert avatar_too_large(dimensions(many)), f"declared size read as {dimensions(many)}"
