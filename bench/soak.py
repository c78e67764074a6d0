"""Soak under faults (issue 15): clients chat through the real sync engine while the network and the server fail.

`run(Plan)` starts a stack of its own (it is restarted mid-run) behind the fault proxy (tests/faultproxy.py),
creates agents and customers (one ticket per customer, assigned round-robin to the agents), and lets every
client send numbered messages ("soak <client> <seq>") into its tickets at random intervals. Most clients are
engines in this process (one asyncio loop); `Plan.killable` of them are child processes running the same
engine, which are SIGKILLed and restarted. Meanwhile a fault loop drops, stalls and resets connections, loses
responses to and cuts requests of `POST /rest/v1/messages`, and restarts the stack. After the last fault the
network heals; the run waits until every client's outbox is empty and its cache holds exactly the messages
PostgreSQL's RLS returns for its user (convergence), then checks:

- lost: a message a client created (it is in the sender's cache: `send_message` commits before returning)
  that is not on the server, or that the server refused (failed state);
- duplicated: two server rows with the same numbered content;
- order: for each client and ticket, the server's `created_at` order is the client's numbering;
- cache mismatches: per client, ids in the cache vs ids RLS lets that user select.

Memory (bench/soak_memory.py): the bench process's RSS growth from a quarter of the run to its end, raw and with
SQLite's heap (the caches' data) taken out, and the stack's RSS over its last segment without a restart (the
restarts come in the first half of the faults, so that segment is most of the run).

`soak` value = lost + duplicated (0 is the goal; its "baseline" is that goal). `python -m bench soak` runs the
long variant (50 clients, 10 minutes, 2 stack restarts, 3 kills); `SOAK_MINUTES` / `SOAK_CLIENTS` scale it.
tests/test_soak.py runs a short one in the normal suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg

from bench import soak_memory
from bench.harness import BenchEnv, Figure, figure
from sync import RemoteConfig, SyncEngine
from tests.conftest import PASSWORD, User, create_user
from tests.faultproxy import FaultProxy
from tests.stackproc import StackProcess, session_claims

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import asyncio, logging, os, random, sqlite3, sys
from pathlib import Path
from sync import RemoteConfig, SyncEngine

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

async def main() -> None:
    url, key, data_dir, email, password, client, stop, tickets = sys.argv[1:9]
    engine = await SyncEngine.open(RemoteConfig(url, key), Path(data_dir), timeout=5)
    while engine.session is None:
        try:
            await engine.sign_in(email, password)
        except Exception:
            await asyncio.sleep(0.5)
    engine.loop.poll_interval = 2.0
    engine.loop.retry_cap = 2.0
    path = engine.cache.path
    conn = sqlite3.connect(path)
    # the next number follows the last message this client created (committed before send_message returned)
    seq = 1 + max([int(c.split()[2]) for (c,) in conn.execute(
        "select content from messages where content like ?", (f"soak {client} %",))] or [0])
    conn.close()
    await engine.start()
    rng = random.Random()
    ids = tickets.split(",")
    while not all(engine.cache.has_ticket(t) for t in ids):  # a fresh cache: its first pull brings the tickets
        await asyncio.sleep(0.2)
    print("ready", seq, flush=True)
    while not os.path.exists(stop):
        engine.commands.send_message(rng.choice(ids), f"soak {client} {seq:06d}")
        seq += 1
        await asyncio.sleep(rng.uniform(0.1, 0.5))
    while engine.status.pending:
        engine.wake(pull=True)
        await asyncio.sleep(0.2)
    print("drained", flush=True)
    while not os.path.exists(stop + ".exit"):
        await asyncio.sleep(0.2)
    logging.info("exit status %s", engine.status)
    await engine.close()

asyncio.run(main())
"""


@dataclass
class Plan:
    clients: int = 8
    agents: int = 2
    killable: int = 2
    seconds: float = 40.0
    interval: tuple[float, float] = (0.2, 1.0)  # seconds between one client's messages (uniform); read per message
    restarts: int = 1
    kills: int = 2
    converge_timeout: float = 120.0
    seed: int = 15


@dataclass
class Client:
    index: int
    user: User
    tickets: list[str]
    data_dir: Path
    engine: SyncEngine | None = None
    proc: subprocess.Popen[str] | None = None
    cache_path: Path | None = None


@dataclass
class Result:
    sent: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    cache_mismatches: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    convergence_s: float = float("nan")
    client_rss_growth: float = float("nan")
    memory: dict[str, Any] = field(default_factory=dict)  # bench/soak_memory.py's figures
    error_lines: int = 0
    detail: list[str] = field(default_factory=list)


def fault_proxy(api_url: str) -> FaultProxy:
    """The soak's fault proxy in front of ``api_url``, started. It keeps no record of the traffic: it runs in the
    process whose memory the soak measures, and a record of every request line and websocket frame grew with the
    run (10 MB of 50 clients' 10 minutes, found by tracemalloc from the warm-up point to the end)."""
    url = urlparse(api_url)
    return FaultProxy(url.hostname or "127.0.0.1", url.port or 80, record=False).start()


def _rls_ids(db_url: str, user: User) -> set[str]:
    with psycopg.connect(db_url) as conn:
        conn.execute("set local role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)", (json.dumps(session_claims(db_url, user.id)),)
        )
        return {str(r[0]) for r in conn.execute("select id from public.messages")}


def _cache_rows(path: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return [
            (str(a), str(b), str(c), str(d))
            for a, b, c, d in conn.execute("select id, sender_id, content, coalesce(local_state, '') from messages")
        ]
    finally:
        conn.close()


def _outbox(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("select count(*) from outbox").fetchone()[0])
    finally:
        conn.close()


def _close_pipe(proc: subprocess.Popen[str]) -> None:
    if proc.stdout is not None:
        proc.stdout.close()


class Soak:
    def __init__(self, plan: Plan, root: Path) -> None:
        self.plan = plan
        self.root = root
        self.rng = random.Random(plan.seed)
        self.stack = StackProcess(root / "stack")
        self.proxy: FaultProxy | None = None
        self.clients: list[Client] = []
        self.result = Result()
        self.stop_file = root / "stop"

    # --- setup ---------------------------------------------------------------------------------------
    def setup(self) -> None:
        self.stack.start()
        self.populate()

    def populate(self) -> None:
        """The fault proxy, users, tickets and clients on `self.stack` (already running; bench/e2e.py uses the
        harness's stack and these clients, without faults, as background chatter)."""
        self.proxy = fault_proxy(self.stack.api_url)
        agents = [create_user(self.stack.db_url, "agent") for _ in range(self.plan.agents)]
        customers = [create_user(self.stack.db_url, "customer") for _ in range(self.plan.clients - self.plan.agents)]
        owned: dict[str, list[str]] = {a.id: [] for a in agents}
        with psycopg.connect(self.stack.db_url, autocommit=True) as conn:
            for i, customer in enumerate(customers):
                agent = agents[i % len(agents)]
                row = conn.execute(
                    "insert into public.tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id",
                    (customer.id, agent.id, f"soak {i}"),
                ).fetchone()
                assert row is not None
                owned[customer.id] = [str(row[0])]
                owned[agent.id].append(str(row[0]))
        for i, user in enumerate([*agents, *customers]):
            self.clients.append(Client(i, user, owned[user.id], self.root / f"client-{i}"))

    @property
    def url(self) -> str:
        assert self.proxy is not None
        return self.proxy.url

    def _spawn(self, client: Client) -> None:
        with (self.root / f"client-{client.index}.log").open("a") as log:
            client.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    self.url,
                    self.stack.anon_key,
                    str(client.data_dir),
                    client.user.email,
                    PASSWORD,
                    str(client.index),
                    str(self.stop_file),
                    ",".join(client.tickets),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=ROOT,
                env={**os.environ, "SUPPORTCHAT_SESSION_STORE": "file"},
            )

    async def _open(self, client: Client) -> None:
        engine = await SyncEngine.open(RemoteConfig(self.url, self.stack.anon_key), client.data_dir, timeout=5)
        while engine.session is None:
            try:
                await engine.sign_in(client.user.email, PASSWORD)
            except Exception:  # the first sign-in may meet a fault too
                await asyncio.sleep(0.5)
        engine.loop.poll_interval = 2.0
        engine.loop.retry_cap = 2.0
        client.engine = engine
        client.cache_path = engine.cache.path
        await engine.start()
        while not all(engine.cache.has_ticket(t) for t in client.tickets):
            await asyncio.sleep(0.2)

    # --- the run ---------------------------------------------------------------------------------------
    async def _chat(self, client: Client, until: float) -> None:
        assert client.engine is not None
        rng = random.Random(self.plan.seed * 1000 + client.index)
        seq = 1
        while time.monotonic() < until:
            client.engine.commands.send_message(rng.choice(client.tickets), f"soak {client.index} {seq:06d}")
            seq += 1
            await asyncio.sleep(rng.uniform(*self.plan.interval))

    def _fault(self, kind: str) -> None:
        self.result.faults[kind] = self.result.faults.get(kind, 0) + 1

    async def _faults(self, started: float, until: float) -> float:
        """Inject faults until `until`; returns when the last one ended (monotonic)."""
        assert self.proxy is not None
        proxy = self.proxy
        span = until - started
        # the restarts evenly spread over the first half of the faults (a sixth and a third in, with two): the stack's
        # last segment, whose memory is measured after its own warm-up (soak_memory.StackWatch), is then the last
        # two thirds (~5 minutes of the long variant; restarts a third apart left ~2, and its figure swung with where
        # that short window began)
        restarts = [started + span * (i + 1) / (2 * self.plan.restarts + 2) for i in range(self.plan.restarts)]
        kills = [started + span * (i + 0.5) / max(1, self.plan.kills) for i in range(self.plan.kills)]
        killable = [c for c in self.clients if c.proc is not None]
        last = time.monotonic()
        while time.monotonic() < until - 3:
            now = time.monotonic()
            if restarts and now >= restarts[0]:
                restarts.pop(0)
                await asyncio.to_thread(self.stack.restart)
                self._fault("stack_restart")
            elif kills and now >= kills[0] and killable:
                kills.pop(0)
                victim = killable[len(kills) % len(killable)]
                assert victim.proc is not None
                victim.proc.send_signal(signal.SIGKILL)
                await asyncio.to_thread(victim.proc.wait)
                _close_pipe(victim.proc)
                self._fault("client_sigkill")
                self._spawn(victim)
            else:
                kind = self.rng.choice(("drop", "stall", "cut", "lose_response", "reset_request", "none"))
                if kind in ("drop", "stall"):
                    proxy.set_mode(kind)
                    await asyncio.sleep(self.rng.uniform(0.5, 2.5))
                    proxy.set_mode("pass")
                    if kind == "stall":
                        proxy.cut()  # a dead link is noticed by the client's timeout; do not wait for it here
                elif kind == "cut":
                    proxy.cut()
                elif kind == "lose_response":
                    proxy.lose_response(b"POST /rest/v1/messages")
                elif kind == "reset_request":
                    proxy.reset_request(b"POST /rest/v1/messages")
                if kind != "none":
                    self._fault(kind)
            last = time.monotonic()
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        for _ in restarts:  # a loaded machine may have stretched the run: the planned faults still happen
            await asyncio.to_thread(self.stack.restart)
            self._fault("stack_restart")
        for i in range(len(kills)):
            victim = killable[i % len(killable)]
            assert victim.proc is not None
            victim.proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(victim.proc.wait)
            _close_pipe(victim.proc)
            self._fault("client_sigkill")
            self._spawn(victim)
        last = time.monotonic()
        with proxy._lock:
            proxy.rules.clear()  # one-shot faults not yet triggered must not fire after "the last fault"
        proxy.set_mode("pass")
        return last

    def _converged(self) -> bool:
        for client in self.clients:
            if client.cache_path is None or _outbox(client.cache_path):
                return False
            cached = {r[0] for r in _cache_rows(client.cache_path)}
            if cached != _rls_ids(self.stack.db_url, client.user):
                return False
        return True

    async def run(self) -> Result:
        plan = self.plan
        killable = self.clients[-plan.killable :] if plan.killable else []
        for client in killable:
            self._spawn(client)
        for client in self.clients:
            if client not in killable:
                await self._open(client)
        for client in killable:  # their cache path, once they made one
            assert client.proc is not None and client.proc.stdout is not None
            line = await asyncio.to_thread(client.proc.stdout.readline)
            assert line.startswith("ready"), line
        stack = soak_memory.StackWatch(lambda: self.stack.proc.pid if self.stack.proc is not None else None)
        watching = asyncio.create_task(stack.run())
        started = time.monotonic()
        until = started + plan.seconds
        chats = [asyncio.create_task(self._chat(c, until)) for c in self.clients if c.engine is not None]
        warm_at = started + plan.seconds / 4
        await asyncio.sleep(max(0.0, warm_at - time.monotonic()))
        mine = [c.cache_path for c in self.clients if c.engine is not None and c.cache_path is not None]
        warm = await asyncio.to_thread(soak_memory.point, mine)
        last_fault = await self._faults(time.monotonic(), until)
        await asyncio.gather(*chats)
        self.stop_file.touch()
        for client in killable:  # the child's cache file, named by its user
            client.cache_path = client.data_dir / "cache" / f"{client.user.id}.sqlite3"
        deadline = time.monotonic() + plan.converge_timeout
        while not await asyncio.to_thread(self._converged):
            if time.monotonic() > deadline:
                self.result.detail.append("did not converge")
                break
            for client in self.clients:
                if client.engine is not None:
                    client.engine.wake(pull=True)
            await asyncio.sleep(0.5)
        self.result.convergence_s = time.monotonic() - last_fault
        end = await asyncio.to_thread(soak_memory.point, mine)
        watching.cancel()
        self.result.client_rss_growth = end.rss / warm.rss - 1
        self.result.memory = {**soak_memory.client_figures(warm, end), **stack.figures()}
        Path(str(self.stop_file) + ".exit").touch()
        for client in killable:
            assert client.proc is not None
            await asyncio.to_thread(client.proc.wait, 60)
        self._check()
        return self.result

    def _check(self) -> None:
        result = self.result
        with psycopg.connect(self.stack.db_url) as conn:
            server = conn.execute(
                "select id::text, content, created_at from public.messages"
                " where content like 'soak %' order by created_at, id"
            ).fetchall()
        by_content: dict[str, int] = {}
        for _, content, _ in server:
            by_content[content] = by_content.get(content, 0) + 1
        result.duplicated = sum(n - 1 for n in by_content.values())
        server_ids = {mid for mid, _, _ in server}
        for client in self.clients:
            assert client.cache_path is not None
            rows = _cache_rows(client.cache_path)
            mine = [r for r in rows if r[1] == client.user.id and r[2].startswith("soak ")]
            result.sent += len(mine)
            lost = [r for r in mine if r[0] not in server_ids or r[3] == "failed"]
            result.lost += len(lost)
            result.detail += [f"lost {r}" for r in lost[:5]]
            visible = _rls_ids(self.stack.db_url, client.user)
            cached = {r[0] for r in rows}
            result.cache_mismatches += len(cached ^ visible)
            if cached != visible:
                state = client.engine.status if client.engine is not None else self._child_tail(client)
                result.detail.append(
                    f"client {client.index} ({client.user.role}): {len(visible - cached)} missing,"
                    f" {len(cached - visible)} extra, outbox {_outbox(client.cache_path)}; {state}"
                )
        last: dict[tuple[str, str], int] = {}
        with psycopg.connect(self.stack.db_url) as conn:
            ordered = conn.execute(
                "select ticket_id::text, content from public.messages where content like 'soak %'"
                " order by created_at, id"
            ).fetchall()
        for ticket, content in ordered:
            _, client_index, seq = content.split()
            key = (ticket, client_index)
            if int(seq) < last.get(key, 0):
                result.out_of_order += 1
            last[key] = int(seq)
        log = self.root / "stack-stack.log"
        if log.exists():
            result.error_lines = sum(
                1
                for line in log.read_text(errors="replace").splitlines()
                if " ERROR " in line or line.startswith("ERROR")
            )

    def _child_tail(self, client: Client) -> str:
        log = self.root / f"client-{client.index}.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return "child: " + " | ".join(line[-300:] for line in lines if "sync" in line or "status" in line)[-1500:]

    async def close(self) -> None:
        for client in self.clients:
            if client.engine is not None:
                await client.engine.close()
            if client.proc is not None:
                if client.proc.poll() is None:
                    client.proc.kill()
                    client.proc.wait()
                _close_pipe(client.proc)
        if self.proxy is not None:
            self.proxy.stop()
        self.stack.stop()


async def run(plan: Plan, root: Path) -> Result:
    soak = Soak(plan, root)
    await asyncio.to_thread(soak.setup)
    try:
        return await soak.run()
    finally:
        await soak.close()


def soak(env: BenchEnv) -> list[Figure]:
    minutes = float(os.environ.get("SOAK_MINUTES", "10"))
    clients = int(os.environ.get("SOAK_CLIENTS", "50"))
    plan = Plan(
        clients=clients,
        agents=max(2, clients // 5),
        killable=3,
        seconds=minutes * 60,
        restarts=2,
        kills=3,
        converge_timeout=300,
    )
    with tempfile.TemporaryDirectory(prefix="soak-", dir=env.tmp) as tmp:
        result = asyncio.run(run(plan, Path(tmp)))
    extra: dict[str, Any] = {
        "messages": result.sent,
        "lost": result.lost,
        "duplicated": result.duplicated,
        "out_of_order": result.out_of_order,
        "cache_mismatches": result.cache_mismatches,
        "faults": result.faults,
        "convergence_s": round(result.convergence_s, 1),
        **result.memory,  # client_rss_growth_pct (raw), ..._less_sqlite_pct, stack_rss_growth_pct: soak_memory.py
        "error_log_lines": result.error_lines,
        "clients": clients,
        "minutes": minutes,
        "detail": result.detail[:10],
    }
    fig = figure(
        "soak",
        result.lost + result.duplicated,
        "messages",
        "goal: nothing lost or duplicated",
        0,
        higher_is_better=False,
        **extra,
    )
    fig["ratio"] = 1.0 if fig["value"] == 0 else 0.0  # against a goal of zero: 1 = met (not an infinite ratio)
    return [fig]


BENCHES = {"soak": soak}
