"""The `supportchat` command line: the app's own options, the `stack` and `db` tools it keeps, and the
decision between a native window and the browser."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from supportchat_app import cli
from supportchat_app.demostack import stack_command


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supportchat_app", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_help_lists_the_app_options_and_tools() -> None:
    result = run("--help")
    assert result.returncode == 0
    for word in ("--web", "--port", "stack", "db"):
        assert word in result.stdout


def test_stack_and_db_subcommands_still_work() -> None:
    stack = run("stack", "--help")
    assert stack.returncode == 0 and "--demo" in stack.stdout and "--json" in stack.stdout
    db = run("db", "migrate", "--db-url", "postgresql://nobody@127.0.0.1:1/none")
    assert db.returncode == 1 and "Migration failed" in db.stderr and "Traceback" not in db.stderr


def test_bad_option_is_a_usage_error_not_a_crash() -> None:
    result = run("--port", "not-a-number")
    assert result.returncode == 2 and "invalid int value" in result.stderr and "Traceback" not in result.stderr


def test_window_or_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not cli.has_display()
    monkeypatch.setenv("DISPLAY", ":0")
    assert cli.has_display()


def test_demo_stack_command_from_source_and_frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    data = Path(str(tmp_path)) / "demo"
    assert stack_command(data)[:4] == [sys.executable, "-m", "localbase", "stack"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    command = stack_command(data)
    assert command[:2] == [sys.executable, "stack"], "a frozen bundle runs its own `stack` subcommand"
    assert command[2:] == ["--demo", "--json", "--port", "0", "--data", str(data)]


def test_sync_tools_are_wired_in() -> None:
    result = run("sync", "--help")
    assert result.returncode == 0 and "status" in result.stdout and "outbox" in result.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "supportchat_app", "sync", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("SUPABASE_")},
    )
    assert missing.returncode == 2 and "SUPABASE_URL" in missing.stderr and "Traceback" not in missing.stderr
