"""First run as a new user meets it: nothing configured, `supportchat --web` starts the embedded demo
server with demo data, the sign-in page offers the demo accounts, one click shows the demo inbox; on exit
the demo server goes away with the app."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.test_browser_app import chrome

pytestmark = pytest.mark.browser


def test_first_run_starts_the_demo_and_signs_in_with_one_click(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
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
        deadline = started + 60
        while "Demo accounts" not in (page := http.get(app.url + "/signin").text):
            assert time.monotonic() < deadline, "the demo server did not come up"
            time.sleep(0.5)
        assert "public demo keys" in page, "the sign-in page says the demo keys are public"
        ready_after = time.monotonic() - started
        assert ready_after < 30, f"demo ready after {ready_after:.1f} s (goal: within 30 s)"
        info = json.loads((data / "demo-stack.json").read_text())
        assert info["api_url"].startswith("http://127.0.0.1:") and "service" not in json.dumps(info)

        driver.get(app.launch_url)
        driver.get(app.url + "/signin")
        WebDriverWait(driver, 30).until(ec.element_to_be_clickable(
            (By.CSS_SELECTOR, "[data-testid=demo-agent]"))).click()  # Alice Agent, first agent listed
        WebDriverWait(driver, 60).until(ec.visibility_of_element_located(
            (By.XPATH, "//*[text()='Invoice shows the wrong VAT number']")))
        assert "Alice Agent" in driver.page_source
    finally:
        http.close()
        driver.quit()
        app.stop()
    assert not (data / "demo-stack.json").exists(), "the app stopped its demo server"
    with pytest.raises(OSError):
        os.kill(int(info["pid"]), 0)
