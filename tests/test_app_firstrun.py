"""First run as a new user meets it: nothing configured, `supportchat --web` starts the embedded demo
server with demo data, the sign-in page offers the demo accounts, one click shows the demo inbox; on exit
the demo server goes away with the app.

The 30 s goal is a wall-clock one for a user on an idle machine. On a machine shared with other work the
wall clock measures the other work too, so the test checks what the demo itself needs: the CPU time of the
app, the demo stack and its PostgreSQL (all their processes, finished ones included) must stay under 30 s
always, and the wall clock must too whenever the machine was not oversubscribed while we waited (1-minute
load average at most the number of CPUs): a start-up that waits on something is caught there."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import httpx
import psutil
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.test_browser_app import chrome

pytestmark = pytest.mark.browser

GOAL_S = 30


def cpu_seconds(app_pid: int, data: Path) -> float:
    """User + system CPU time of the app and every process it started, finished ones included (their time is
    in their parent's children times once reaped), plus the demo's PostgreSQL, which ``pg_ctl`` detaches."""
    roots = [psutil.Process(app_pid)]
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "-D" in cmdline and str(data) in " ".join(cmdline) and "pg_ctl" not in " ".join(cmdline):
            roots.append(proc)  # the postmaster of the demo's cluster, under the app's data dir
    assert len(roots) == 2, f"expected the demo's one PostgreSQL beside the app, found {len(roots) - 1}"
    total = 0.0
    seen: set[int] = set()
    for root in roots:
        with contextlib.suppress(psutil.NoSuchProcess):
            for proc in [root, *root.children(recursive=True)]:
                if proc.pid in seen:
                    continue
                seen.add(proc.pid)
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = proc.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
    return total


def test_first_run_starts_the_demo_and_signs_in_with_one_click(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPABASE_URL", raising=False)
    monkeypatch.delenv("SUPABASE_ANON_KEY", raising=False)
    data = tmp_path / "fresh"
    app = AppProcess(data, api_url="", anon_key="")
    app.extra_env = {"SUPABASE_URL": "", "SUPABASE_ANON_KEY": ""}  # nothing configured
    started = time.monotonic()
    app.start(timeout=60)
    driver = chrome()
    http = httpx.Client(timeout=5)
    try:
        http.get(app.launch_url)  # the launch secret's cookie, as the window the app opens gets it
        deadline = started + 120  # a hang guard only: the goal is checked below
        while "Demo accounts" not in (page := http.get(app.url + "/signin").text):
            assert time.monotonic() < deadline, "the demo server did not come up"
            time.sleep(0.5)
        assert "public demo keys" in page, "the sign-in page says the demo keys are public"
        ready_after = time.monotonic() - started
        assert app.proc is not None
        cpu = cpu_seconds(app.proc.pid, data)
        assert cpu < GOAL_S, f"the demo needed {cpu:.1f} s of CPU to be ready (goal: within {GOAL_S} s)"
        load = os.getloadavg()[0]
        print(f"demo ready after {ready_after:.1f} s, {cpu:.1f} s of CPU, load average {load:.1f}")
        if load <= (os.cpu_count() or 1):
            assert ready_after < GOAL_S, f"demo ready after {ready_after:.1f} s (goal: within {GOAL_S} s)"
        info = json.loads((data / "demo-stack.json").read_text())
        assert info["api_url"].startswith("http://127.0.0.1:") and "service" not in json.dumps(info)

        driver.get(app.launch_url)
        driver.get(app.url + "/signin")
        WebDriverWait(driver, 30).until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid=demo-agent]"))
        ).click()  # Alice Agent, first agent listed
        WebDriverWait(driver, 60).until(
            ec.visibility_of_element_located((By.XPATH, "//*[text()='Invoice shows the wrong VAT number']"))
        )
        assert "Alice Agent" in driver.page_source
    finally:
        http.close()
        driver.quit()
        app.stop()
    assert not (data / "demo-stack.json").exists(), "the app stopped its demo server"
    with pytest.raises(OSError):
        os.kill(int(info["pid"]), 0)
