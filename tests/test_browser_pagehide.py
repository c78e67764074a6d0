"""No page of the app makes the browser ask it before the next page's request (supportchat_app/pagehide.py, issue
14 bench `inbox_5k`): NiceGUI's ``beforeunload`` handler is moved to ``pagehide``, so the page has no
``beforeunload`` listener once loaded, and what NiceGUI keeps with it still holds: a reload keeps the tab's id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.stackproc import StackProcess
from tests.test_browser_app import driver

pytestmark = pytest.mark.browser
uses_driver = driver


@pytest.fixture
def app(stack: StackProcess, tmp_path: Path) -> Iterator[AppProcess]:
    proc = AppProcess(tmp_path / "app-data", stack.api_url, stack.anon_key).start()
    try:
        yield proc
    finally:
        proc.stop()


def _loaded(driver: WebDriver) -> None:
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.readyState === 'complete' && typeof TAB_ID === 'string'")
    )


def _unload_listeners(driver: WebDriver) -> list[str]:
    """The window's listeners of ``beforeunload`` (attribute handlers included), as the browser's debugger sees them."""
    window = driver.execute_cdp_cmd("Runtime.evaluate", {"expression": "window"})["result"]["objectId"]
    found = driver.execute_cdp_cmd("DOMDebugger.getEventListeners", {"objectId": window})["listeners"]
    return [str(listener["type"]) for listener in found if listener["type"] == "beforeunload"]


def test_pages_have_no_beforeunload_handler_and_a_reload_keeps_the_tab(app: AppProcess, driver: WebDriver) -> None:
    driver.get(app.launch_url)  # signed out: the sign-in page, a NiceGUI page like any other
    _loaded(driver)
    assert _unload_listeners(driver) == []
    assert driver.execute_script("return window.onbeforeunload") is None
    tab = driver.execute_script("return TAB_ID")
    driver.refresh()
    _loaded(driver)
    assert driver.execute_script("return TAB_ID") == tab  # marked closed on the way out (pagehide): the same tab
    assert _unload_listeners(driver) == []
