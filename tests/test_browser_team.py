"""The team page in a real browser: an admin sees the invitation form and the team with each one's role, their
own role not changeable; the names read in light and dark mode. Saves artifacts/team-{light,dark}.png to look at
(docs/screenshots/ keeps reviewed copies).
"""

from __future__ import annotations

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.appproc import AppProcess
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_browser_app import ARTIFACTS, app, click, css, driver, sign_in, until_element  # noqa: F401

pytestmark = pytest.mark.browser

# a name's text colour and the background it is drawn on, as 0-255 luminance
LUMINANCE_JS = """
const lum = (c) => { const m = c.match(/[0-9.]+/g); return 0.299 * m[0] + 0.587 * m[1] + 0.114 * m[2]; };
const name = arguments[0];
let el = name, bg = null;
for (; el; el = el.parentElement) {
  const m = getComputedStyle(el).backgroundColor.match(/[0-9.]+/g);
  if (m && (m.length < 4 || +m[3] > 0)) { bg = lum(getComputedStyle(el).backgroundColor); break; }
}
return [lum(getComputedStyle(name).color), bg === null ? 255 : bg];
"""


def shoot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"team-{name}.png"))


def contrast(driver: WebDriver, testid: str) -> float:
    text, background = driver.execute_script(LUMINANCE_JS, driver.find_element(*css(f"[data-testid={testid}]")))
    return abs(float(text) - float(background))


def test_the_team_page_lists_roles_and_reads_in_light_and_dark(
    app: AppProcess, driver: WebDriver, stack: StackProcess
) -> None:
    admin = create_user(stack.db_url, "admin", "Ada Admin")
    agent = create_user(stack.db_url, "agent", "Alan Agent")
    sign_in(driver, app, admin.email, admin.password)
    until_element(driver, css("[data-testid=ticket-count]"), lambda e: e.is_displayed(), 60)
    driver.get(app.url + "/invite")
    until_element(driver, css(f"[data-testid=team-name-{agent.id}]"), lambda e: e.text == "Alan Agent", 60)
    assert "Agent" in driver.find_element(*css(f"[data-testid=team-role-{agent.id}]")).text
    own = driver.find_element(*css(f"[data-testid=team-role-{admin.id}]"))
    assert driver.execute_script("return arguments[0].closest('.q-field').classList.contains('q-field--disabled')", own)
    assert driver.find_element(*css(f"[data-testid=team-name-{admin.id}]")).text == "Ada Admin (you)"
    driver.execute_script("document.querySelector('[data-testid=team-list]').scrollIntoView({block: 'center'})")
    assert contrast(driver, f"team-name-{agent.id}") > 100
    shoot(driver, "light")
    click(driver, "[data-testid=dark-toggle]")
    until_element(driver, css("body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
    assert contrast(driver, f"team-name-{agent.id}") > 100
    shoot(driver, "dark")
