"""The sync engine's error tree, drawn once (after httpx's ``_exceptions.py``)::

    SyncError                      anything the engine raises on purpose
    ├── RetryableError             network down, timeout, 5xx: try again later (backoff + reconnect)
    ├── AuthError                  401 / expired or refused token, bad credentials: refresh or sign in again
    └── PermanentError             the server refused this row for good (42501 RLS, 22xxx, 23xxx, 4xx):
                                   retrying cannot help; the entry becomes ``failed`` with the reason

Every error carries the server's ``code``, ``message``, ``details`` and ``hint`` (PostgREST's four
keys) when there was a server answer, so the UI can show the server's own words.
"""

from __future__ import annotations

from typing import Any


class SyncError(Exception):
    """Base of every error the engine raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        hint: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details
        self.hint = hint
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} ({self.code})" if self.code else self.message

    def reason(self) -> str:
        """One line for the user: the server's message, with its details when they add something."""
        if self.details and isinstance(self.details, str) and self.details not in self.message:
            return f"{self.message}: {self.details}"
        return self.message


class RetryableError(SyncError):
    """Transient: the network, a timeout or the server's 5xx. Retried with backoff."""


class AuthError(SyncError):
    """The credentials are missing, expired or refused (401, PGRST301/PGRST303, invalid_credentials)."""

    def __init__(self, message: str, *, refused: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # refused: the server said no to the refresh token or the password; a plain expiry is not refused
        self.refused = refused


class PermanentError(SyncError):
    """The server refused the request for good; retrying the same row cannot succeed."""
