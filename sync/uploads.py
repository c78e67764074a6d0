"""Uploads in progress, in memory (``engine.attachments.uploads``): how many bytes of each queued file the
server has or is being sent right now, for the app's per-file progress bar, and which files the user
cancelled while their upload ran (the next progress report stops it).

Nothing here is persisted: after a restart an upload resumes at the server's offset (sync/tus.py) and reports
from there; the queue's own state (queued / uploaded) is in the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sync.tus import UploadCancelled


def state_file(local_path: str | Path) -> Path:
    """Where a queued file's resumable upload URL is remembered: beside its copy, ``<attachment id>.tus``."""
    local = Path(local_path)
    return local.with_name(local.name + ".tus")


class Uploads:
    def __init__(self) -> None:
        self._sent: dict[str, tuple[int, int]] = {}
        self._cancelled: set[str] = set()

    def reporter(self, attachment_id: str) -> Callable[[int, int], None]:
        """The progress callback of one file's upload (raises UploadCancelled once the file is cancelled)."""

        def report(done: int, size: int) -> None:
            if attachment_id in self._cancelled:
                raise UploadCancelled(attachment_id)
            self._sent[attachment_id] = (done, size)

        return report

    def sent(self, attachment_id: str) -> tuple[int, int] | None:
        """(bytes, size) of a file being uploaded, or None when it is not uploading in this process."""
        return self._sent.get(attachment_id)

    def finished(self, attachment_id: str) -> None:
        self._sent.pop(attachment_id, None)
        self._cancelled.discard(attachment_id)

    def cancel(self, attachment_id: str) -> None:
        self._cancelled.add(attachment_id)
        self._sent.pop(attachment_id, None)

    def is_cancelled(self, attachment_id: str) -> bool:
        return attachment_id in self._cancelled
