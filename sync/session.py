"""Where the signed-in session lives between runs: the OS keyring when it has a real backend,
else a JSON file readable by the user only (0600) in the data dir. One session per server URL.

Headless Linux usually has no keyring backend (keyring falls back to its ``fail`` backend); the
file is then the honest choice rather than an error or keyrings.alt's plaintext store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import keyring
import keyring.errors
from keyring.backends import chainer, fail

from sync.models import LocalUser, as_role

log = logging.getLogger(__name__)
SERVICE = "supportchat"


@dataclass(frozen=True)
class StoredSession:
    access_token: str
    refresh_token: str
    expires_at: int
    user: LocalUser

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_at": self.expires_at,
                "user": asdict(self.user),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> StoredSession:
        data: dict[str, Any] = json.loads(text)
        return cls(
            str(data["access_token"]),
            str(data["refresh_token"]),
            int(data["expires_at"]),
            LocalUser(**{**data["user"], "role": as_role(data["user"].get("role"))}),
        )


class SessionStore(Protocol):
    def load(self) -> StoredSession | None: ...
    def save(self, session: StoredSession) -> None: ...
    def clear(self) -> None: ...


class FileSessionStore:
    """The session in a 0600 file, written atomically (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> StoredSession | None:
        try:
            return StoredSession.from_json(self.path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring an unreadable session file %s: %s", self.path, exc)
            return None

    def save(self, session: StoredSession) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(session.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class KeyringSessionStore:
    """The session in the OS keyring (Secret Service, macOS Keychain, Windows Credential Locker)."""

    def __init__(self, username: str) -> None:
        self.username = username

    def load(self) -> StoredSession | None:
        text = keyring.get_password(SERVICE, self.username)
        if not text:
            return None
        try:
            return StoredSession.from_json(text)
        except (ValueError, KeyError, TypeError):
            return None

    def save(self, session: StoredSession) -> None:
        keyring.set_password(SERVICE, self.username, session.to_json())

    def clear(self) -> None:
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            keyring.delete_password(SERVICE, self.username)


def keyring_usable() -> bool:
    """True when keyring has a real backend (not the ``fail`` one, not a plaintext fallback)."""
    try:
        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring):
            return False
        if isinstance(backend, chainer.ChainerBackend):
            return bool(backend.backends)
        return float(getattr(backend, "priority", 0)) > 0 and "plaintext" not in type(backend).__module__.lower()
    except Exception:  # a broken D-Bus or backend must never stop the app: use the file
        return False


def default_session_store(data_dir: Path, url: str) -> SessionStore:
    key = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    if os.environ.get("SUPPORTCHAT_SESSION_STORE", "") != "file" and keyring_usable():
        return KeyringSessionStore(f"session-{key}")
    return FileSessionStore(data_dir / f"session-{key}.json")
