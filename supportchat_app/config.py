"""Where the app keeps its files and which server it talks to.

Resolution order for the server: `SUPABASE_URL` + `SUPABASE_ANON_KEY` in the environment, then the
settings page's saved choice (`settings.json` in the data dir), else the embedded demo stack.
Settings are a small JSON file rather than a library-backed store because they are three plain
values the user can also read and fix by hand.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

SETTINGS_FILE = "settings.json"


def data_dir() -> Path:
    """`SUPPORTCHAT_DATA_DIR`, else the platform's user data dir (never inside a frozen bundle)."""
    base = os.environ.get("SUPPORTCHAT_DATA_DIR")
    path = Path(base) if base else Path(platformdirs.user_data_dir("supportchat", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class ServerChoice:
    """A server to connect to; `source` is 'env', 'settings' or 'demo' (url/key filled once the demo runs)."""

    source: str
    url: str = ""
    anon_key: str = ""


def load_settings(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_settings(root: Path, **values: Any) -> None:
    """Merge `values` into the settings file (None removes a key); written atomically."""
    data = load_settings(root)
    for key, value in values.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    tmp = root / (SETTINGS_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(root / SETTINGS_FILE)


def server_choice(root: Path) -> ServerChoice:
    url, key = os.environ.get("SUPABASE_URL", ""), os.environ.get("SUPABASE_ANON_KEY", "")
    if url and key:
        return ServerChoice("env", url.rstrip("/"), key)
    saved = load_settings(root)
    if saved.get("url") and saved.get("anon_key"):
        return ServerChoice("settings", str(saved["url"]).rstrip("/"), str(saved["anon_key"]))
    return ServerChoice("demo")


DEFAULT_ATTACHMENT_CACHE_MB = 256
MIN_ATTACHMENT_CACHE_MB, MAX_ATTACHMENT_CACHE_MB = 1, 1024 * 1024


def attachment_cache_mb(root: Path) -> int:
    """The settings page's bound on downloaded attachment files (MB), or the default when unset or bad."""
    value = load_settings(root).get("attachment_cache_mb")
    if isinstance(value, int) and not isinstance(value, bool):
        if MIN_ATTACHMENT_CACHE_MB <= value <= MAX_ATTACHMENT_CACHE_MB:
            return value
    return DEFAULT_ATTACHMENT_CACHE_MB
