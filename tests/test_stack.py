"""The `stack` and `db migrate` commands as a user runs them: output, demo data, clean stop, migrate anywhere."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from supabase import create_client

from localbase import demo
from localbase.keys import DEMO_JWT_SECRET, Keys
from localbase.postgres import EmbeddedPostgres, free_port
from supportchat_app import canned

# the keys `supabase start` prints, as tutorials and apps hardcode them (issue 17: ours had an extra `iat`)
CLI_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4"
    "MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
CLI_SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9s"
    "ZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)


def _postgres_pids(data_dir: Path) -> list[int]:
    return [
        p.pid
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(data_dir) in " ".join(p.info["cmdline"] or [])
    ]


def _demo_stack(data: Path) -> subprocess.Popen[str]:
    """`supportchat stack --demo --json` on ``data``; its first line of output is the JSON."""
    return subprocess.Popen(
        [sys.executable, "-m", "supportchat_app", "stack", "--demo", "--json", "--port", "0", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_demo_stack_prints_json_serves_demo_accounts_and_stops_cleanly(tmp_path: Path, stop_signal: int) -> None:
    data = tmp_path / "demo"
    proc = _demo_stack(data)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info) == {"api_url", "anon_key", "service_role_key", "db_url", "superuser_db_url", "jwt_secret"}
        assert info["jwt_secret"] == DEMO_JWT_SECRET  # the throwaway demo stack only
        assert (info["anon_key"], info["service_role_key"]) == (CLI_ANON_KEY, CLI_SERVICE_ROLE_KEY)
        assert _postgres_pids(data), "PostgreSQL should run while the stack runs"

        # code that hardcodes the CLI's well-known keys works unchanged
        listed = httpx.get(
            f"{info['api_url']}/auth/v1/admin/users",
            headers={"apikey": CLI_SERVICE_ROLE_KEY, "Authorization": f"Bearer {CLI_SERVICE_ROLE_KEY}"},
            timeout=30,
        )
        assert listed.status_code == 200 and len(listed.json()["users"]) == len(demo.ACCOUNTS)
        client = create_client(info["api_url"], CLI_ANON_KEY)
        email, role, _ = demo.ACCOUNTS[1]
        session = client.auth.sign_in_with_password({"email": email, "password": demo.PASSWORD})
        assert session.user is not None and session.user.app_metadata["role"] == role == "agent"
        tickets = client.table("tickets").select("id,subject,status").execute().data
        assert len(tickets) >= 3, "the demo agent sees its own and the unassigned demo tickets"
        # the seed wrote with triggers off; the SLA rows they keep are there too, so the inbox shows its badges
        open_ids = {t["id"] for t in tickets if t["status"] == "open"}
        slas = client.table("ticket_sla").select("ticket_id,first_response_due_at,next_response_due_at").execute()
        due = {s["ticket_id"] for s in slas.data if s["first_response_due_at"] or s["next_response_due_at"]}
        assert open_ids and open_ids <= due, f"open demo tickets without SLA due times: {open_ids - due}"
        # the desk's shared canned replies and macros, as the agent reads them (RLS) and the app fills them in
        canned_rows = client.table("canned_replies").select("title,shortcut,body,owner_id,change_xid").execute().data
        assert {r["shortcut"] for r in canned_rows} == {shortcut for _, shortcut, _ in demo.CANNED}
        assert all(r["owner_id"] is None and r["change_xid"] > 0 for r in canned_rows), "shared, stamped on insert"
        context = canned.context_for("Carol Customer", "Alice Agent", "0123456789abcdef", "Invoice")
        greeting = next(r["body"] for r in canned_rows if r["shortcut"] == "hi")
        assert canned.render(greeting, context).startswith("Hi Carol, thanks for reaching out! I'm Alice")
        macro_rows = client.table("macros").select("name,reply,actions,owner_id").execute().data
        assert {"Close as resolved", "Escalate to billing"} <= {m["name"] for m in macro_rows}
        tag_ids = {t["name"]: t["id"] for t in client.table("tags").select("id,name").execute().data}
        billing = next(m for m in macro_rows if m["name"] == "Escalate to billing")
        assert billing["owner_id"] is None and billing["actions"]["add_tags"] == [tag_ids["billing"]]
        with psycopg.connect(info["db_url"]) as conn:
            assert conn.execute("select count(*) from auth.sessions").fetchone() == (1,), "only the agent's session"
            counts = conn.execute(
                "select (select count(*) from tickets), (select count(*) from messages),"
                " (select count(*) from messages where is_internal)"
            ).fetchone()
        assert counts is not None and counts[0] == len(demo.TICKETS) and counts[1] > 20 and counts[2] >= 3
    finally:
        proc.send_signal(stop_signal)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "keys are public" in err, "the demo stack must say that anyone can use its keys"
    assert _postgres_pids(data) == [], "nothing may keep running after the stack stopped"


def test_a_demo_database_seeded_before_the_shared_tools_gets_them_once_at_its_next_start(tmp_path: Path) -> None:
    """The app's demo data dir outlives upgrades: a demo desk seeded before the canned replies and macros were part of
    the demo (made here by removing them as the superuser) gets them at its next start, and only that once."""
    data = tmp_path / "demo"
    for start in range(3):
        proc = _demo_stack(data)
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            with psycopg.connect(info["superuser_db_url"], autocommit=True) as conn:
                counts = conn.execute(
                    "select (select count(*) from canned_replies), (select count(*) from macros),"
                    " (select count(*) from tags where deleted_at is null)"
                ).fetchone()
                # the first start seeded them, the second wrote them again, the third left the tombstones alone
                assert counts == (len(demo.CANNED), len(demo.MACROS), len(demo.TAGS)), (start, counts)
                if start == 0:  # as a demo database seeded before them
                    conn.execute("delete from macros; delete from canned_replies; delete from tags")
                elif start == 1:  # removed by the desk's admin: tombstones, never refilled
                    conn.execute("update canned_replies set deleted_at = now()")
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "not added" not in err, err


def test_stack_without_demo_generates_a_private_secret_per_data_dir(tmp_path: Path) -> None:
    keys = Keys.for_data_dir(tmp_path)
    assert keys.jwt_secret != DEMO_JWT_SECRET and len(keys.jwt_secret) >= 32
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600
    assert Keys.for_data_dir(tmp_path) == keys, "the same data dir keeps its secret"
    assert Keys.for_data_dir(tmp_path / "other").jwt_secret != keys.jwt_secret


def test_db_migrate_bootstraps_plain_postgres_once(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "plain", free_port())
    pg.start()
    try:
        run = [sys.executable, "-m", "supportchat_app", "db", "migrate", "--db-url", pg.url]
        first = subprocess.run(run, capture_output=True, text=True, timeout=120, check=False)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["applied"], "a fresh database gets every migration"
        second = subprocess.run(run, capture_output=True, text=True, timeout=120, check=False)
        assert second.returncode == 0 and "up to date" in second.stdout
        with psycopg.connect(pg.url) as conn:
            tables = {
                r[0]
                for r in conn.execute("select tablename from pg_tables where schemaname = 'public' and rowsecurity")
            }
            published = {
                r[0]
                for r in conn.execute("select tablename from pg_publication_tables where pubname = 'supabase_realtime'")
            }
        assert {"profiles", "tickets", "messages", "ticket_reads"} <= tables
        assert {"profiles", "tickets", "messages", "ticket_reads"} <= published
    finally:
        pg.stop()


def test_db_migrate_reports_an_unreachable_database_plainly(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=2"
    result = subprocess.run(
        [sys.executable, "-m", "supportchat_app", "db", "migrate", "--db-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Migration failed:")
    assert "Traceback" not in result.stderr


def test_a_stack_whose_api_port_is_taken_fails_plainly_and_stops_postgres(tmp_path: Path) -> None:
    data = tmp_path / "taken"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "localbase", "stack", "--json", "--port", str(port), "--data", str(data)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode != 0
    assert result.stdout == "", "nothing may claim to be ready"
    assert (data / "pgdata" / "PG_VERSION").exists(), "PostgreSQL had started before the API failed"
    assert _postgres_pids(data) == []


def test_a_stack_whose_app_fails_to_build_stops_postgres(tmp_path: Path) -> None:
    """Regression: an exception while building the API app (a broken import) left PostgreSQL running."""
    data = tmp_path / "broken"
    script = (
        "import localbase.server as server\n"
        "def broken(*args, **kwargs):\n"
        "    raise ImportError('simulated broken endpoint module')\n"
        "server.create_app = broken\n"
        "from localbase.cli import main\n"
        f"raise SystemExit(main(['stack', '--port', '0', '--data', {str(data)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0 and "simulated broken endpoint module" in result.stderr
    assert (data / "pgdata" / "PG_VERSION").exists()
    assert _postgres_pids(data) == [], "PostgreSQL must not outlive a stack that failed to start"
