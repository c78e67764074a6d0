"""sync/attachments.py: what may be queued, the Storage key of a file, the LRU eviction plan — one case
per reason, each with its why."""

from __future__ import annotations

import re

import pytest

from sync.attachments import MAX_BYTES, CachedFile, key_name, object_key, plan_eviction, refusal

VALID_KEY = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$")  # Supabase Storage's key characters


@pytest.mark.parametrize(
    ("name", "size", "mime", "why"),
    [
        ("shot.png", 10, "image/png", None),
        ("notes.txt", 10, "text/plain;charset=UTF-8", None),  # parameters do not change the type
        ("shot.png", MAX_BYTES, "image/png", None),  # the limit itself is allowed
        ("big.png", MAX_BYTES + 1, "image/png", "at most 25 MB"),  # the bucket's file_size_limit
        ("page.html", 10, "text/html", "cannot be attached"),  # not in allowed_mime_types: script in a page
        ("logo.svg", 10, "image/svg+xml", "cannot be attached"),  # SVG can carry script too
        ("empty.txt", 0, "text/plain", "empty"),
        ("a/b.png", 10, "image/png", "without slashes"),  # would break the <ticket>/<message>/<key> shape
        (" ", 10, "image/png", "1 to 255"),
    ],
)
def test_refusal(name: str, size: int, mime: str, why: str | None) -> None:
    reason = refusal(name, size, mime)
    assert (reason is None) if why is None else (reason is not None and why in reason)


@pytest.mark.parametrize(
    ("display", "key"),
    [
        ("screenshot.png", "screenshot.png"),
        ("résumé 2026.pdf", "resume 2026.pdf"),  # accents folded, spaces kept (Storage allows them)
        ("スクリーンショット.png", "file.png"),  # nothing ASCII left: a placeholder, extension kept
        ("..", "file"),  # never a dot segment
        ("a#b%c.txt", "a_b_c.txt"),  # '#' and '%' are not key characters
    ],
)
def test_key_name(display: str, key: str) -> None:
    assert key_name(display) == key
    assert VALID_KEY.match(object_key("t", "m", display))


def test_plan_eviction_lru_never_pinned() -> None:
    files = [
        CachedFile("old", 40, 1.0),
        CachedFile("pinned", 50, 0.5, pinned=True),
        CachedFile("mid", 30, 2.0),
        CachedFile("new", 20, 3.0),
    ]
    assert plan_eviction(files, 100) == ["old"]  # 140 → 100
    assert plan_eviction(files, 75) == ["old", "mid"]
    assert plan_eviction(files, 10) == ["old", "mid", "new"]  # pinned stays even when over budget
    assert plan_eviction(files, 1000) == []
