"""The app's Tailwind stylesheet built ahead (supportchat_app/styles.py) styles every class its pages show, in a
real browser.

The pages no longer load NiceGUI's in-page Tailwind compiler; they link ``static/tailwind.css``. The test walks the
pages the other browser tests reach — sign-in, the inbox, an open ticket with its thread, the search palette and the
shortcut sheet, dark mode, settings, canned replies, macros, tags and SLA, profile, invite, and a customer's
workspace and ticket — and gathers every class on each DOM, including the ones composed at run time (f-strings in
Python, Vue's ``:class``, Quasar's own). Then it runs NiceGUI's own Tailwind runtime (the compiler the pages used to
load, served by NiceGUI) over all of them in the page, with the page's dark variant, and asserts that every class the
runtime makes a rule for has one in the built stylesheet. The only classes left out on purpose are the ``rotate-*``
ones NiceGUI's ``headwind.css`` undoes (Quasar's classes of the same name; that file is loaded only with the runtime).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import nicegui
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_browser_app import REDRAWN, act, app, chrome, click, css, driver, seed, sign_in, until_element

pytestmark = pytest.mark.browser
uses_driver, uses_app = driver, app

NICEGUI_STATIC = Path(nicegui.__file__).parent / "static"
# the classes NiceGUI's headwind.css sets back to no rotation: with the runtime they were Quasar's alone
HEADWIND = set(re.findall(r"\.([\w-]+)", (NICEGUI_STATIC / "headwind.css").read_text()))
DARK_VARIANT = "@custom-variant dark (&:where(body.body--dark, body.body--dark *));"  # as NiceGUI's page declares it

CLASSES_JS = (
    "const s = new Set(); for (const e of document.querySelectorAll('[class]')) for (const c of e.classList) s.add(c);"
    " return [...s];"
)
# the class names a stylesheet's rules select, through nested and grouping rules, unescaped
SELECTED_JS = r"""
const owner = arguments[0] ? document.querySelector(arguments[0])
  : [...document.head.querySelectorAll('style')].find((s) => s.textContent.startsWith('/*! tailwindcss'));
const sheet = owner.sheet;
const out = new Set();
const unescape = (s) => s.replace(/\\([0-9a-fA-F]{1,6}) ?/g, (_, h) => String.fromCodePoint(parseInt(h, 16)))
  .replace(/\\(.)/g, '$1');
const walk = (rules) => {
  for (const r of rules) {
    const names = r.selectorText ? r.selectorText.matchAll(/\.((?:\\[0-9a-fA-F]{1,6} ?|\\.|[\w-])+)/g) : [];
    for (const m of names) out.add(unescape(m[1]));
    if (r.cssRules) walk(r.cssRules);
  }
};
walk(sheet.cssRules);
return [...out];
"""
RUNTIME_JS = """
const [classes, src, variant] = arguments;
const holder = document.createElement('div');
holder.hidden = true;
holder.id = 'tailwind-probe';
holder.className = classes.join(' ');
document.body.append(holder);
const input = document.createElement('style');
input.type = 'text/tailwindcss';
input.textContent = variant;
document.head.append(input);
const script = document.createElement('script');
script.src = src;
document.head.append(script);
"""


def runtime_sheet_ready(d: WebDriver) -> bool:
    return bool(
        d.execute_script(
            "return [...document.head.querySelectorAll('style')].some("
            "s => s.textContent.startsWith('/*! tailwindcss') && s.textContent.includes('@layer utilities'))"
        )
    )


def shown(driver: WebDriver, app: AppProcess, path: str, selector: str) -> set[str]:
    """Open ``path``, wait for ``selector`` to show, and return the classes on the page."""
    driver.get(app.url + path)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return window.did_handshake === true"))
    until_element(driver, css(selector), lambda e: e.is_displayed())
    return classes(driver)


def classes(driver: WebDriver) -> set[str]:
    return set(driver.execute_script(CLASSES_JS))


@pytest.fixture
def customer_driver() -> Iterator[WebDriver]:
    d = chrome()
    try:
        yield d
    finally:
        d.quit()


def test_built_stylesheet_has_every_class_the_runtime_would_style(
    app: AppProcess, driver: WebDriver, customer_driver: WebDriver, stack: StackProcess, users: Users
) -> None:
    ticket = seed(stack.db_url, users, "Tailwind classes on every page")
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    driver.get(app.launch_url)
    seen = shown(driver, app, "/signin", "input[data-testid=email]")
    # the page no longer compiles Tailwind: no runtime script, the built stylesheet linked instead
    assert not driver.find_elements(By.CSS_SELECTOR, "script[src*='tailwindcss']")
    assert driver.find_elements(By.CSS_SELECTOR, "link[rel=stylesheet][href*='/_sc/tailwind-']")

    sign_in(driver, app, users.admin.email, users.admin.password)
    row = f'[data-ticket-id="{ticket}"][data-testid="ticket-row"]'
    until_element(driver, css(row), lambda e: e.is_displayed())
    seen |= classes(driver)
    click(driver, row)
    wait.until(ec.visibility_of_element_located((By.XPATH, "//*[text()='Chrome 131 on Windows 11.']")))
    seen |= classes(driver)
    act(driver, (By.TAG_NAME, "body"), lambda e: e.send_keys("?"))
    wait.until(ec.visibility_of_element_located((By.XPATH, "//*[text()='Keyboard shortcuts']")))
    seen |= classes(driver)
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    wait.until(ec.invisibility_of_element_located((By.XPATH, "//*[text()='Keyboard shortcuts']")))
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("k").key_up(Keys.CONTROL).perform()
    until_element(driver, css("input[data-testid=search-input]"), lambda e: e.is_displayed())
    seen |= classes(driver)
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    click(driver, "[data-testid=dark-toggle]")
    until_element(driver, css("body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
    seen |= classes(driver)
    for path, selector in (
        ("/settings", "[data-testid=current-server]"),
        ("/canned", "[data-testid=canned-new]"),
        ("/macros", "[data-testid=macro-new]"),
        ("/desk-settings", "[data-testid=tag-add]"),
        ("/profile", "[data-testid=own-avatar]"),
        ("/invite", "[data-testid=invite-email]"),
    ):
        seen |= shown(driver, app, path, selector)

    sign_in(customer_driver, app, users.customer.email, users.customer.password)
    click(customer_driver, row)
    WebDriverWait(customer_driver, 30, ignored_exceptions=REDRAWN).until(
        ec.visibility_of_element_located((By.XPATH, "//*[text()='Which browser are you using?']"))
    )
    seen |= classes(customer_driver)

    # NiceGUI's Tailwind runtime over every class seen, in a page of the app
    built = set(driver.execute_script(SELECTED_JS, "link[href*='/_sc/tailwind-']"))
    assert {"flex", "items-center", "gap-2", "text-sm"} <= built  # the stylesheet is there and read
    runtime = f"/_nicegui/{nicegui.__version__}/static/tailwindcss.min.js"
    driver.execute_script(RUNTIME_JS, sorted(seen), runtime, DARK_VARIANT)
    WebDriverWait(driver, 60).until(runtime_sheet_ready)
    styled = set(driver.execute_script(SELECTED_JS, None))
    assert len(styled) > 50, styled  # the runtime ran over the classes seen
    missing = sorted(styled - built - HEADWIND)
    assert not missing, f"classes on the app's pages that Tailwind styles but static/tailwind.css lacks: {missing}"
