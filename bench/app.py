"""Benchmarks of the desktop app in headless Chromium (the real app process against the bench stack).

- `thread_open`: open a ticket with 10,000 messages from the inbox (a click, as an agent does); time to
  a painted frame showing the newest message. Baseline: the same app rendering every message at once
  (SUPPORTCHAT_THREAD_PAGE_SIZE=10000). Goal ≤ 300 ms.
- `send_to_bubble`: Enter pressed in the composer until the bubble is painted (the browser draws an echo
  at once; `server_bubble_ms` is when the app's own bubble with its pending state replaced it). Baseline:
  until the server has confirmed it (what an app that waits for the round trip would show). Goal ≤ 50 ms.

Both sign in once through the sync engine (the app restores that session) and let the engine pull the
thread into the cache first, so the numbers are about the UI, not the first download.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import BenchEnv, Figure, figure, median, percentile
from tests.appproc import AppProcess
from tests.test_browser_app import chrome

THREAD_SIZE = 10_000
OPEN_RUNS = 3
OPEN_LIMIT = 60
SENDS = 15

# checks every animation frame: the bubble counts once it is in a painted frame; then waits for "sent"
_SEND_JS = """
const [text, done] = [arguments[0], arguments[arguments.length - 1]];
const ta = document.querySelector('textarea[data-testid=composer]');
const thread = document.querySelector('[data-testid=thread]');
const bubbles = () => [...thread.querySelectorAll('[data-message-id]')].filter(n => n.textContent.includes(text));
let bubbleAt = 0, serverAt = 0;
const t0 = performance.now();
const tick = () => {
  const elapsed = performance.now() - t0, found = bubbles();
  const server = found.find(n => n.getAttribute('data-message-id') !== 'echo');
  if (found.length && !bubbleAt) bubbleAt = elapsed;
  if (server && !serverAt) serverAt = elapsed;
  if (server && server.querySelector('[data-testid=state-sent]')) return done([bubbleAt, elapsed, serverAt]);
  if (elapsed > 15000) return done({bubbleAt, serverAt});
  requestAnimationFrame(tick);
};
ta.value = text;
ta.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));
requestAnimationFrame(tick);
"""


def _seed_long_thread(env: BenchEnv) -> str:
    """A ticket with THREAD_SIZE messages a minute apart. Written with triggers off (as localbase/demo.py
    does) so the history can be back-dated; the columns the triggers fill are filled here."""
    users = env.users
    with psycopg.connect(env.stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id",
            (users.customer.id, users.agent.id, "Bench: a very long conversation"),
        ).fetchone()
        assert row is not None
    with psycopg.connect(env.stack.db_url) as conn, conn.transaction():
        conn.execute("set local session_replication_role = replica")
        conn.execute(
            "insert into messages (ticket_id, sender_id, content, created_at, change_xid, change_id)"
            " select %(t)s, case when i %% 2 = 1 then %(c)s::uuid else %(a)s::uuid end,"
            " 'Message ' || i || ' of the long thread', now() - make_interval(mins => %(n)s - i),"
            " pg_current_xact_id()::text::bigint, nextval('private.change_seq') from generate_series(1, %(n)s) i",
            {"t": row[0], "c": users.customer.id, "a": users.agent.id, "n": THREAD_SIZE},
        )
        conn.execute(
            "update tickets set last_message_at = now(), change_xid = pg_current_xact_id()::text::bigint,"
            " change_id = nextval('private.change_seq') where id = %s",
            (row[0],),
        )
    return str(row[0])


async def _presync(env: BenchEnv, data: Path, ticket_id: str, expect: int) -> None:
    from sync import RemoteConfig, SyncEngine

    engine = await SyncEngine.open(RemoteConfig(env.stack.api_url, env.stack.anon_key), data_dir=data)
    if engine.user is None:
        await engine.sign_in(env.users.agent.email, env.users.agent.password)
    await engine.start()
    deadline = time.monotonic() + 90
    while engine.cache.count_thread(ticket_id) < expect:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the engine pulled {engine.cache.count_thread(ticket_id)} of {expect} messages")
        await asyncio.sleep(0.2)
    await engine.stop()
    await engine.close()


# click the ticket in the inbox (as an agent does) and wait for a painted frame showing the newest message
_OPEN_JS = """
const [ticketId, newest, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const row = document.querySelector(`[data-testid=ticket-row][data-ticket-id="${ticketId}"]`);
const shown = () => [...document.querySelectorAll('[data-message-id]')].some(n =>
  n.textContent.includes(newest) && n.getBoundingClientRect().height > 0);
const t0 = performance.now();
row.click();
const tick = () => { const elapsed = performance.now() - t0;
  if (shown()) return done(elapsed);
  if (elapsed > %d) return done(null);
  requestAnimationFrame(tick); };
requestAnimationFrame(tick);
""".replace("%d", str(OPEN_LIMIT * 1000))


def _open_times(app: AppProcess, ticket_id: str, newest: str) -> list[float]:
    driver = chrome()
    driver.set_script_timeout(OPEN_LIMIT + 10)
    try:
        driver.get(app.launch_url)  # the launch secret lets this browser in (supportchat_app.launch)
        times = []
        for _ in range(OPEN_RUNS):
            driver.get(f"{app.url}/")  # the inbox, untimed; the ticket opens from it like a click does
            deadline = time.monotonic() + 60
            while not driver.execute_script(
                "return !!document.querySelector(`[data-testid=ticket-row][data-ticket-id='${arguments[0]}']`)",
                ticket_id,
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the ticket never showed in the inbox")
                time.sleep(0.05)
            elapsed = driver.execute_async_script(_OPEN_JS, ticket_id, newest)
            if elapsed is None:
                driver.save_screenshot(str(Path(tempfile.gettempdir()) / "bench-thread-open-failed.png"))
                raise RuntimeError(f"the newest message did not appear within {OPEN_LIMIT} s")
            times.append(float(elapsed))
        return times
    finally:
        driver.quit()


def thread_open(env: BenchEnv) -> list[Figure]:
    started = time.monotonic()
    ticket_id = _seed_long_thread(env)
    data = env.tmp / "app-thread-open"
    os.environ["SUPPORTCHAT_SESSION_STORE"] = "file"
    asyncio.run(_presync(env, data, ticket_id, THREAD_SIZE))
    print(
        f"# thread_open: seeded and pulled {THREAD_SIZE} messages in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    newest = f"Message {THREAD_SIZE} of the long thread"
    results: dict[str, list[float]] = {}
    for label, page_size in (("paged", None), ("all", str(THREAD_SIZE))):
        extra = {"SUPPORTCHAT_THREAD_PAGE_SIZE": page_size} if page_size else {}
        app = AppProcess(data, env.stack.api_url, env.stack.anon_key, extra_env=extra).start()
        try:
            results[label] = _open_times(app, ticket_id, newest)
            print(f"# thread_open {label}: {[round(t) for t in results[label]]} ms", file=sys.stderr)
        finally:
            app.stop()
    paged, everything = median(results["paged"]), median(results["all"])
    return [
        figure(
            "thread_open",
            paged,
            "ms",
            "render all 10,000 messages at once",
            everything,
            higher_is_better=False,
            goal_ms=300,
            runs=OPEN_RUNS,
            messages=THREAD_SIZE,
            paged_samples=[round(t) for t in results["paged"]],
            all_samples=[round(t) for t in results["all"]],
        )
    ]


def send_to_bubble(env: BenchEnv) -> list[Figure]:
    users = env.users
    with psycopg.connect(env.stack.db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into tickets (customer_id, assignee_id, subject) values (%s, %s, %s) returning id",
            (users.customer.id, users.agent.id, "Bench: typing speed"),
        ).fetchone()
        assert row is not None
        conn.execute(
            "insert into messages (ticket_id, sender_id, content) values (%s, %s, 'hello')", (row[0], users.customer.id)
        )
    ticket_id = str(row[0])
    data = env.tmp / "app-send"
    os.environ["SUPPORTCHAT_SESSION_STORE"] = "file"
    asyncio.run(_presync(env, data, ticket_id, 1))
    app = AppProcess(data, env.stack.api_url, env.stack.anon_key).start()
    driver = chrome()
    try:
        driver.get(app.launch_url)
        driver.get(f"{app.url}/?t={ticket_id}")
        deadline = time.monotonic() + 60
        while not driver.execute_script("return !!document.querySelector('textarea[data-testid=composer]')"):
            if time.monotonic() > deadline:
                raise RuntimeError("the composer never appeared")
            time.sleep(0.05)
        driver.set_script_timeout(20)
        bubble: list[float] = []
        confirmed: list[float] = []
        server_bubble: list[float] = []
        for i in range(SENDS):
            result: Any = driver.execute_async_script(_SEND_JS, f"bench send {i} {uuid.uuid4().hex[:8]}")
            if not isinstance(result, list):
                raise RuntimeError(f"a sent message never showed up as confirmed: {result}")
            bubble.append(result[0])
            confirmed.append(result[1])
            server_bubble.append(result[2])
            time.sleep(0.2)
    finally:
        driver.quit()
        app.stop()
    return [
        figure(
            "send_to_bubble",
            median(bubble),
            "ms",
            "wait for the server to confirm",
            median(confirmed),
            higher_is_better=False,
            goal_ms=50,
            sends=SENDS,
            p95_ms=round(percentile(bubble, 95), 1),
            confirmed_p95_ms=round(percentile(confirmed, 95), 1),
            server_bubble_ms=round(median(server_bubble), 1),
        )
    ]


BENCHES = {"thread_open": thread_open, "send_to_bubble": send_to_bubble}
