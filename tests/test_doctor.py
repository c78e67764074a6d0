"""`supportchat doctor`: its pure decisions, then the real command against the real localbase.

The integration tests run `python -m supportchat_app doctor` as a child process (as a support engineer
would run it) with SUPABASE_URL/SUPABASE_ANON_KEY pointing at the session's stack and a temp data dir;
the failed-outbox case is made by the real sync engine, whose message the server really refuses.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supportchat_app import doctor
from sync import RemoteConfig, SyncEngine
from sync.cache import SCHEMA_VERSION as VERSION
from sync.cache import Cache
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket, sql

ROOT = Path(__file__).resolve().parent.parent

# --- pure parts ----------------------------------------------------------------------------------------------------


def test_summary_is_ok_only_without_problems_and_says_each_problem_once() -> None:
    good = [doctor.Check("version", True, "0.1.0"), doctor.Check("data dir", True, "/x")]
    report = doctor.summarize(good, "0.1.0")
    assert report["ok"] is True and report["problems"] == [] and report["summary"] == "All 2 checks passed."
    assert all("problem" not in c for c in report["checks"])
    bad = [
        *good,
        doctor.Check("auth", False, "401", doctor.KEY_REFUSED),
        doctor.Check("rest", False, "401", doctor.KEY_REFUSED),
    ]
    report = doctor.summarize(bad, "0.1.0")
    assert report["ok"] is False
    assert report["problems"] == [doctor.KEY_REFUSED]
    assert report["summary"] == "2 of 4 checks found a problem."
    text = doctor.render_text(report)
    assert "FAIL  auth" in text and text.count(doctor.KEY_REFUSED) == 1


def test_service_keys_are_refused_and_anon_keys_pass(stack: StackProcess) -> None:
    assert doctor.key_role(stack.anon_key) == "anon"
    assert doctor.key_role(stack.service_role_key) == "service_role"
    assert doctor.key_problem(stack.anon_key) is None
    assert "service key" in (doctor.key_problem(stack.service_role_key) or "")
    assert "service key" in (doctor.key_problem("sb_secret_abc") or "")
    assert doctor.key_problem("sb_publishable_abc") is None
    assert doctor.key_role("not.a-jwt.at-all") is None


def test_realtime_url_follows_the_api_scheme_and_path() -> None:
    assert doctor.realtime_url("http://127.0.0.1:54321/", "k").startswith(
        "ws://127.0.0.1:54321/realtime/v1/websocket?apikey=k&vsn=1.0.0"
    )
    assert doctor.realtime_url("https://x.supabase.co", "a b").startswith(
        "wss://x.supabase.co/realtime/v1/websocket?apikey=a+b"
    )


def test_webview_gui_and_headless() -> None:
    assert doctor.webview_gui("linux", {}) == "qt"
    assert doctor.webview_gui("win32", {}) == "edgechromium"
    assert doctor.webview_gui("darwin", {}) == "cocoa"
    assert doctor.webview_gui("linux", {"PYWEBVIEW_GUI": "GTK"}) == "gtk"
    assert doctor.headless("linux", {}) is True
    assert doctor.headless("linux", {"WAYLAND_DISPLAY": "wayland-0"}) is False
    assert doctor.headless("win32", {}) is False


@pytest.mark.parametrize(
    ("status", "body", "ok"),
    [
        (200, {"swagger": "2.0"}, True),
        (404, {"code": "PGRST125", "message": "Invalid path"}, True),
        (401, {"message": "Invalid API key"}, False),
        (502, None, False),
        (404, None, False),
    ],
)
def test_rest_answers_only_as_postgrest(status: int, body: Any, ok: bool) -> None:
    assert doctor.rest_check(status, body).ok is ok


def test_schema_and_auth_decisions() -> None:
    assert doctor.schema_check(401, {"code": "42501"}).ok  # anon may not read tickets: the table exists
    missing = doctor.schema_check(404, {"code": "PGRST205"})
    assert not missing.ok and "db migrate" in missing.problem
    assert doctor.schema_check(401, {"message": "Invalid API key"}).problem == doctor.KEY_REFUSED
    assert doctor.auth_check(200, 200).ok
    assert doctor.auth_check(200, 401).problem == doctor.KEY_REFUSED
    assert "not healthy" in doctor.auth_check(503, 200).problem


def test_outbox_and_data_dir(tmp_path: Path) -> None:
    assert doctor.outbox_check("outbox", 3, 0).ok
    failed = doctor.outbox_check("outbox", 0, 2)
    assert not failed.ok and "Retry or Discard" in failed.problem
    assert doctor.data_dir_check(tmp_path).ok
    if os.geteuid() != 0:  # root writes anywhere, so a read-only dir proves nothing there
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        assert not doctor.data_dir_check(ro).ok
    assert doctor.inside(tmp_path / "a" / "b", tmp_path) and not doctor.inside(tmp_path, tmp_path / "a")


def test_cache_checks_read_real_caches(tmp_path: Path) -> None:
    assert doctor.cache_checks(tmp_path, None)[0].detail == "no local cache yet (nobody signed in)"
    cache = tmp_path / "cache"
    cache.mkdir()
    Cache.open(cache / "u1.sqlite3", "u1", "agent").close()  # the engine's own cache file, schema and all
    checks = doctor.cache_checks(tmp_path, "u1")
    assert [c.ok for c in checks] == [True, True]
    assert checks[0].detail == f"u1 (signed in): schema {VERSION}" and checks[1].detail == "0 pending, 0 failed"
    with sqlite3.connect(cache / "u2.sqlite3") as conn:  # written by a newer SupportChat
        conn.execute(f"pragma user_version = {VERSION + 1}")
    newer = [c for c in doctor.cache_checks(tmp_path, "u1") if not c.ok]
    assert len(newer) == 1 and "newer SupportChat" in newer[0].problem
    extra = tmp_path / "sessions" / "1" / "cache"
    extra.mkdir(parents=True)
    Cache.open(extra / "u3.sqlite3", "u3", "agent").close()
    assert "u3 (browser session 1): schema" in doctor.cache_checks(tmp_path, "u1")[-2].detail
    (cache / "u2.sqlite3").write_bytes(b"this is not a database" * 100)
    broken = [c for c in doctor.cache_checks(tmp_path, "u1") if not c.ok]
    assert len(broken) == 1 and "cannot be read" in broken[0].problem


# --- the real command against the real stack -----------------------------------------------------------------------


def run_doctor(data_dir: Path, url: str, key: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    env = {
        **os.environ,
        "SUPPORTCHAT_DATA_DIR": str(data_dir),
        "SUPABASE_URL": url,
        "SUPABASE_ANON_KEY": key,
        "SUPPORTCHAT_SESSION_STORE": "file",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "supportchat_app", "doctor", "--json", *extra],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print exactly one line, got {proc.stdout!r} / {proc.stderr!r}"
    return proc.returncode, json.loads(lines[0]), proc.stderr


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def test_doctor_reports_a_running_localbase_healthy(stack: StackProcess, tmp_path: Path) -> None:
    code, report, _ = run_doctor(tmp_path / "data", stack.api_url, stack.anon_key)
    assert code == 0, report
    assert report["ok"] is True and report["problems"] == []
    checks = by_name(report)
    for name in (
        "version",
        "data dir",
        "keyring",
        "webview",
        "configured server",
        "server",
        "auth",
        "rest",
        "schema",
        "realtime",
        "cache",
    ):
        assert checks[name]["ok"], checks.get(name)
    assert "join + heartbeat" in checks["realtime"]["detail"]
    assert stack.api_url in checks["configured server"]["detail"]


def test_doctor_unreachable_server_and_service_key_are_plain_problems(stack: StackProcess, tmp_path: Path) -> None:
    from localbase.postgres import free_port

    code, report, _ = run_doctor(tmp_path, f"http://127.0.0.1:{free_port()}", stack.anon_key)
    assert code == 1 and not by_name(report)["server"]["ok"]
    assert any("cannot be reached" in p for p in report["problems"])
    code, report, _ = run_doctor(tmp_path, stack.api_url, stack.service_role_key)
    assert code == 1 and any("service key" in p for p in report["problems"])
    code, report, _ = run_doctor(tmp_path, stack.api_url, "not-a-key")
    assert code == 1 and report["problems"] == [doctor.KEY_REFUSED]


def test_realtime_round_trip_fails_plainly_with_a_refused_key(stack: StackProcess) -> None:
    assert doctor.realtime_check(stack.api_url, stack.anon_key, 5).ok
    refused = doctor.realtime_check(stack.api_url, "not-a-key", 5)
    assert not refused.ok and "Realtime does not answer" in refused.problem


async def test_doctor_counts_the_signed_in_users_refused_message(
    stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    os.environ["SUPPORTCHAT_SESSION_STORE"] = "file"
    try:
        engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), data)
    finally:
        del os.environ["SUPPORTCHAT_SESSION_STORE"]
    try:
        await engine.sign_in(users.customer2.email, users.customer2.password)
        tid = seed_ticket(stack.db_url, users.customer2, None, "Doctor: closing soon")
        await engine.sync_once()
        engine.commands.send_message(tid, "one more thing")
        sql(stack.db_url, "update tickets set status = 'closed' where id = %s", tid)
        await engine.sync_once()
        assert engine.status.failed == 1
        engine.commands.send_message(tid, "queued, never pushed")  # stays pending: the engine is not running
    finally:
        await engine.close()
    code, report, _ = await _in_thread(run_doctor, data, stack.api_url, stack.anon_key)
    assert code == 1
    checks = by_name(report)
    assert checks["outbox"]["detail"] == "1 pending, 1 failed"
    assert f"{users.customer2.id} (signed in): schema {VERSION}" in checks["cache"]["detail"]
    assert any("Retry or Discard" in p for p in report["problems"])


async def _in_thread(fn: Any, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


def test_server_target_env_settings_and_the_recorded_demo_server(tmp_path: Path, monkeypatch: Any) -> None:
    from supportchat_app import config

    monkeypatch.delenv("SUPABASE_URL", raising=False)
    monkeypatch.delenv("SUPABASE_ANON_KEY", raising=False)
    source, url, _, detail = doctor.server_target(tmp_path)
    assert (source, url) == ("demo", "") and "embedded demo server" in detail
    state = tmp_path / doctor.DEMO_STATE_FILE
    state.write_text(json.dumps({"pid": os.getpid(), "api_url": "http://127.0.0.1:5", "anon_key": "k"}))
    assert doctor.server_target(tmp_path)[:3] == ("demo", "http://127.0.0.1:5", "k")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state.write_text(json.dumps({"pid": dead.pid, "api_url": "http://127.0.0.1:5", "anon_key": "k"}))
    assert doctor.server_target(tmp_path)[1] == "" and "not running" in doctor.server_target(tmp_path)[3]
    config.save_settings(tmp_path, url="https://x.supabase.co/", anon_key="anon")
    assert doctor.server_target(tmp_path)[:3] == ("settings", "https://x.supabase.co", "anon")
    monkeypatch.setenv("SUPABASE_URL", "http://env:1")
    monkeypatch.setenv("SUPABASE_ANON_KEY", "envkey")
    assert doctor.server_target(tmp_path)[:3] == ("env", "http://env:1", "envkey")
