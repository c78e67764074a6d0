"""`supportchat sync …` (sync/cli.py) against a real localbase: sign-in, status, outbox, push,
pull, sign-out, and clear errors for bad usage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from sync import cli
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket, server_messages


def _run(capsys: pytest.CaptureFixture[str], stack: StackProcess, data_dir: Path, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="supportchat sync")
    cli.add_arguments(parser)
    args = parser.parse_args([*argv, "--url", stack.api_url, "--anon-key", stack.anon_key, "--data-dir", str(data_dir)])
    code = cli.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_round_trip(stack: StackProcess, users: Users, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tid = seed_ticket(stack.db_url, users.customer, users.agent, "CLI")
    assert _run(capsys, stack, tmp_path, "status")[0] == 3
    code, out, _ = _run(capsys, stack, tmp_path, "sign-in", "--email", users.agent.email, "--password", "nope")
    assert code == 3
    code, out, _ = _run(
        capsys, stack, tmp_path, "sign-in", "--email", users.agent.email, "--password", users.agent.password
    )
    assert code == 0 and users.agent.email in out
    code, out, _ = _run(capsys, stack, tmp_path, "pull", "--json")
    assert code == 0 and json.loads(out)["rows"] >= 1
    # queue a message through the library (the CLI is headless), then flush it with the CLI
    import asyncio

    from sync import RemoteConfig, SyncEngine

    async def queue() -> str:
        engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), tmp_path)
        try:
            return engine.commands.send_message(tid, "sent by the CLI's push").id
        finally:
            await engine.close()

    mid = asyncio.run(queue())
    code, out, _ = _run(capsys, stack, tmp_path, "outbox")
    assert code == 0 and mid in out and "queued" in out
    code, out, _ = _run(capsys, stack, tmp_path, "status", "--json")
    assert json.loads(out)["status"]["pending"] == 1
    code, out, _ = _run(capsys, stack, tmp_path, "push")
    assert code == 0 and out.startswith("sent 1")
    assert len(server_messages(stack.db_url, [mid])) == 1
    assert _run(capsys, stack, tmp_path, "outbox")[1].strip() == "outbox empty"
    code, out, _ = _run(capsys, stack, tmp_path, "sign-out")
    assert code == 0 and not list((tmp_path / "cache").glob("*.sqlite3"))
    assert _run(capsys, stack, tmp_path, "status")[0] == 3


def test_cli_refuses_bad_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["status", "--url", "", "--anon-key", ""])) == 2
    assert "SUPABASE_URL" in capsys.readouterr().err
    assert cli.run(parser.parse_args(["status", "--url", "ftp://x", "--anon-key", "k"])) == 2
    assert "http" in capsys.readouterr().err
