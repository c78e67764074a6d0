"""Two-step sign-in in a real browser (issue 17): the QR code the Settings page draws is an image the browser
renders (the simulated `User` cannot tell), the key typed from the page and a first code turn it on; then a
second browser signs in with the password and the authenticator code and sees the agent's inbox.
Screenshots: artifacts/screenshots/mfa-*.png (docs/screenshots/ keeps reviewed copies).
"""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.appproc import AppProcess
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import seed_ticket
from tests.test_browser_app import act, app, chrome, click, css, driver, sign_in, until_element  # noqa: F401

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"  # reviewed ones: docs/screenshots


def test_totp_set_up_in_the_browser_then_a_sign_in_with_the_code(
    app: AppProcess,
    driver: WebDriver,
    stack: StackProcess,
) -> None:
    agent = create_user(stack.db_url, "agent")
    customer = create_user(stack.db_url, "customer")
    ticket = seed_ticket(stack.db_url, customer, agent, "Two-step: invoice export", [(customer, "hi", False)])
    sign_in(driver, app, agent.email, agent.password)
    until_element(driver, css(f'[data-ticket-id="{ticket}"]'), lambda e: e.is_displayed(), 60)
    driver.get(app.url + "/settings")
    click(driver, "[data-testid=mfa-setup]")
    until_element(
        driver,
        css("[data-testid=mfa-qr] img"),
        lambda e: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", e) > 0,
    )
    secret = driver.find_element(*css("[data-testid=mfa-secret]")).text.replace(" ", "")
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center'})", driver.find_element(*css("[data-testid=mfa-secret]"))
    )
    driver.save_screenshot(str(SHOTS / "mfa-setup-light.png"))
    totp = pyotp.TOTP(secret)
    act(driver, css("input[data-testid=mfa-code]"), lambda e: e.send_keys(totp.now(), Keys.ENTER))
    until_element(driver, css("[data-testid=mfa-message]"), lambda e: "is on" in e.text)

    other = chrome()
    try:
        sign_in(other, app, agent.email, agent.password)
        act(other, css("input[data-testid=signin-code]"), lambda e: e.send_keys(totp.now()))
        other.save_screenshot(str(SHOTS / "mfa-code-step-light.png"))
        click(other, "[data-testid=signin-verify]")
        until_element(other, css(f'[data-ticket-id="{ticket}"]'), lambda e: e.is_displayed(), 60)
    finally:
        other.quit()
