"""Warnings read in light and dark mode: Quasar's `warning` colour (#f2c037) drawn as text on the app's light
background is 1.6:1, below WCAG's 4.5:1 for body text (the sign-in page's "public demo keys" notice, an expired
session, "changes waiting to sync" all were). The app draws warning text in a darker amber in light mode.
Checked with WCAG's contrast ratio of every `.text-warning` against the background it sits on.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.appproc import AppProcess
from tests.test_browser_app import app, click, css, driver, until_element  # noqa: F401

pytestmark = pytest.mark.browser

# WCAG 2's contrast ratio of an element's text colour against the first opaque background behind it
CONTRAST_JS = """
const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
const lum = (c) => { const m = c.match(/[0-9.]+/g).map(Number);
  return 0.2126 * channel(m[0]) + 0.7152 * channel(m[1]) + 0.0722 * channel(m[2]); };
const probe = document.createElement('div');
probe.className = 'text-warning';
probe.textContent = 'warning';
document.querySelector('.q-page, body').appendChild(probe);
let el = probe, bg = 'rgb(255, 255, 255)';
for (; el; el = el.parentElement) {
  const c = getComputedStyle(el).backgroundColor, m = c.match(/[0-9.]+/g);
  if (m && (m.length < 4 || +m[3] > 0)) { bg = c; break; }
}
const [a, b] = [lum(getComputedStyle(probe).color), lum(bg)];
probe.remove();
return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
"""


def test_warning_text_reads_in_light_and_dark(app: AppProcess, driver: WebDriver) -> None:
    driver.get(app.launch_url)  # the window the app opens carries the launch secret
    driver.get(app.url + "/signin")
    until_element(driver, css("[data-testid=dark-toggle]"), lambda e: e.is_displayed(), 60)
    if "body--dark" in (driver.find_element(*css("body")).get_attribute("class") or ""):
        click(driver, "[data-testid=dark-toggle]")
    until_element(driver, css("body"), lambda e: "body--dark" not in (e.get_attribute("class") or ""))
    assert driver.execute_script(CONTRAST_JS) >= 4.5, "warning text on the light background"
    click(driver, "[data-testid=dark-toggle]")
    until_element(driver, css("body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
    assert driver.execute_script(CONTRAST_JS) >= 4.5, "warning text on the dark background"
