"""Rules of the codebase that a reviewer would otherwise have to re-check by hand after every change:
sync/ is typed without escape hatches (no ``# type: ignore``), and no docstring, comment or README points
to a file outside the repository (notes folders, absolute paths of a developer's machine)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./shared|/work/|SUPABASE_WIRE\.md|SYNC_API\.md")


def _files(*patterns: str) -> list[Path]:
    return sorted(p for pattern in patterns for p in ROOT.glob(pattern) if ".venv" not in p.parts)


def test_sync_has_no_type_ignore() -> None:
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _files("sync/**/*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "type: ignore" in line
    ]
    assert found == []


def test_nothing_points_outside_the_repository() -> None:
    files = _files(
        "sync/**/*.py",
        "supportchat_app/**/*.py",
        "localbase/**/*.py",
        "notify/**/*.py",
        "bench/*.py",
        "**/README.md",
        "*.md",
    )
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in files
        if "node_modules" not in p.parts
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == []
