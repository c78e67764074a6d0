"""Attacker's review of the canned reply files' download (sync/canned_files.py) against a hostile server: a
pulled row whose id is not a uuid (``../../x``; the real column is a uuid, a compromised server's need not
be) is skipped — never a path outside ``<cache>.canned``, and it does not make every sync round fail after
its pull (before the fix, ``refresh`` raised ValueError out of the round). The other, good rows still come
down into the folder, each named by its id.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sync.canned_files import CannedFiles
from sync.workspace_rows import CannedFile


def _file(file_id: str) -> CannedFile:
    return CannedFile(file_id, str(uuid.uuid4()), "a.pdf", "application/pdf", 4, "0" * 64, "canned/x/a.pdf")


def test_a_hostile_rows_id_never_names_a_path_and_the_good_rows_still_arrive(tmp_path: Path) -> None:
    good = str(uuid.uuid4())
    rows = [_file("../../escaped"), _file("/tmp/abs"), _file(good)]
    cache: Any = SimpleNamespace(path=tmp_path / "cache.db", workspace=SimpleNamespace(canned_files=lambda: rows))
    written: list[Path] = []

    async def download_file(bucket: str, key: str, dest: Path, sha256: str | None = None) -> int:
        written.append(dest)
        dest.write_bytes(b"%PDF")
        return 4

    remote: Any = SimpleNamespace(download_file=download_file)
    user: Any = SimpleNamespace(is_staff=True)
    files = CannedFiles(cache, remote, user, account=None, emit=lambda event: None)  # type: ignore[arg-type]
    asyncio.run(files.refresh())
    folder = CannedFiles.folder_of(cache.path)
    assert written == [folder / good]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [good]
    assert files.local(rows[0]) is None
