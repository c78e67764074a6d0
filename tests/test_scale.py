"""The scale dataset (bench/dataset.py) and the initial sync at scale: a generated desk is reproducible, loads
through COPY into a stack of its own with everything the app needs (profiles by the signup trigger, sign-in,
RLS), and an admin's initial sync killed with SIGKILL mid-download continues where it stopped instead of
downloading again. The child is a real process running the real engine against the real stack.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench import dataset
from sync import RemoteConfig, SyncEngine
from tests.conftest import PASSWORD
from tests.stackproc import StackProcess

CHILD = """
import asyncio, functools, sys
from pathlib import Path
from sync import RemoteConfig, SyncEngine, events, pull

pull.INITIAL_BATCH = 2000  # several transactions on the small desk, so the kill lands mid-download

async def main() -> None:
    engine = await SyncEngine.open(RemoteConfig(sys.argv[1], sys.argv[2]), Path(sys.argv[3]), timeout=60)
    if engine.session is None:
        await engine.sign_in(sys.argv[4], sys.argv[5])
    pulled = {}
    remote = engine.remote

    def counting(fetch):
        async def counted(table, cursor, *args, **kwargs):
            rows = await fetch(table, cursor, *args, **kwargs)
            pulled[table] = pulled.get(table, 0) + len(rows)
            return rows
        return counted

    # the puller calls through the instance: count what is downloaded, in pages of either kind (the initial
    # sync's pages of 2,000 here, so the kill lands mid-download)
    remote.pull = counting(remote.pull)
    remote.pull_batch = counting(functools.partial(remote.pull_batch, max_rows=2000))

    def on_event(event: events.Event) -> None:
        if isinstance(event, events.SyncProgress) and event.phase == "messages":
            print("progress", event.done, event.overall, flush=True)
        if isinstance(event, events.StatusChanged) and event.status.progress is not None:
            print("bar", event.status.progress, flush=True)

    engine.subscribe(on_event)
    print("cached", engine.cache.count("messages"), flush=True)
    await engine.sync_once()
    print("pulled", pulled.get("messages", 0), flush=True)
    print("done", engine.cache.count("messages"), flush=True)
    await engine.close()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def desk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackProcess, dataset.Desk]]:
    """A stack of its own: the desk's unassigned tickets would be visible to other tests' agents."""
    stack = StackProcess(tmp_path_factory.mktemp("desk") / "data")
    stack.start()
    try:
        desk = dataset.generate(dataset.SMALL, seed=7)
        dataset.load(stack.db_url, desk)
        yield stack, desk
    finally:
        stack.stop()


def test_the_generator_is_reproducible_and_shaped_like_a_desk() -> None:
    one, two = dataset.generate(dataset.SMALL, seed=3), dataset.generate(dataset.SMALL, seed=3)
    assert one.message_chunks == two.message_chunks and one.ticket_rows == two.ticket_rows
    assert one.message_chunks != dataset.generate(dataset.SMALL, seed=4).message_chunks
    size = dataset.SMALL
    assert (len(one.agents), len(one.customers), len(one.tickets), one.messages) == (
        size.agents,
        size.customers,
        size.tickets,
        size.messages,
    )
    lines = "".join(one.message_chunks).splitlines()
    lengths = sorted(len(line.split("\t")[3]) for line in lines)
    assert 40 <= lengths[len(lengths) // 2] <= 140 and lengths[-1] > 500  # realistic, with a long tail
    assert 0.01 < one.internal / one.messages < 0.1  # internal notes
    assert len(one.read_rows) > size.tickets  # read markers for customers and assignees


def test_the_loaded_desk_is_what_rls_serves(desk_stack: tuple[StackProcess, dataset.Desk]) -> None:
    stack, desk = desk_stack
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from public.messages").fetchone() == (desk.messages,)
        assert conn.execute("select count(*) from public.profiles where role = 'agent'").fetchone() == (
            len(desk.agents),
        )  # the signup trigger made the profiles
        customer = desk.customers[0]
        mine = conn.execute(
            "select count(*) from public.messages m join public.tickets t on t.id = m.ticket_id"
            " where t.customer_id = %s and not m.is_internal",
            (customer,),
        ).fetchone()
        conn.execute("begin")
        conn.execute("set local role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{customer}", "role": "authenticated"}}',)
        )
        assert conn.execute("select count(*) from public.messages").fetchone() == mine
        conn.execute("rollback")


def _child(stack: StackProcess, data_dir: Path, email: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, stack.api_url, stack.anon_key, str(data_dir), email, PASSWORD],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )


@pytest.mark.slow
def test_initial_sync_killed_midway_continues_instead_of_restarting(
    desk_stack: tuple[StackProcess, dataset.Desk], tmp_path: Path
) -> None:
    stack, desk = desk_stack
    data_dir = tmp_path / "admin"
    child = _child(stack, data_dir, desk.email(desk.admin))
    assert child.stdout is not None
    assert child.stdout.readline().split() == ["cached", "0"]
    while True:  # kill it once a good part of the messages is in, mid-download
        line = child.stdout.readline()
        if line.startswith("bar "):
            continue
        assert line.startswith("progress"), line
        if int(line.split()[1]) >= desk.messages // 3:
            child.send_signal(signal.SIGKILL)
            break
    child.wait(30)
    child.stdout.close()

    child = _child(stack, data_dir, desk.email(desk.admin))
    out, _ = child.communicate(timeout=180)
    assert child.returncode == 0, out
    report = dict(line.split()[:2] for line in out.splitlines() if line.split()[0] in {"cached", "pulled", "done"})
    cached, pulled = int(report["cached"]), int(report["pulled"])
    assert cached >= desk.messages // 3  # what the killed run stored survived
    assert pulled == desk.messages - cached  # ... and was not downloaded again
    assert int(report["done"]) == desk.messages  # nothing missing
    # the resumed run is still the initial sync: its progress bar shows, continuing from what was cached
    bars = [float(line.split()[1]) for line in out.splitlines() if line.startswith("bar ")]
    progress = [line.split() for line in out.splitlines() if line.startswith("progress ")]
    assert progress and bars and bars[-1] == 1.0 and bars == sorted(bars)
    rows = len(desk.agents) + len(desk.customers) + 1 + len(desk.tickets) + desk.messages + len(desk.read_rows)
    first = float(progress[0][2])  # rows done (those cached before + this run's first batch) / all rows
    assert first > cached / rows, (first, cached, rows)
    assert any(0 < b < 1 for b in bars)

    async def check() -> None:  # the resumed cache is complete and marked done
        engine = await SyncEngine.open(RemoteConfig(stack.api_url, stack.anon_key), data_dir)
        try:
            assert engine.cache.count("messages") == desk.messages
            assert engine.cache.initial_sync_done()
        finally:
            await engine.close()

    asyncio.run(check())
