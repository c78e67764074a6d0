"""The app in a real browser (Debian chromium headless through selenium): sign in, open a thread, send a
message with the Enter key and see it confirmed; saves artifacts/browser-thread.png to look at.

NiceGUI redraws parts of the page as sync lands (the inbox, the header, the thread), so a found element
may be replaced before it is used. Every interaction therefore goes through `act`/`until_element`, which
locate the element and use it in one attempt and locate it again when it went stale, and every wait ignores
an element that went stale between being found and being checked (selenium's expected conditions find, then
check); nothing sleeps.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.appproc import AppProcess
from tests.conftest import Users
from tests.stackproc import StackProcess

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMEDRIVER = "/usr/bin/chromedriver"


def chrome(width: int = 1400, height: int = 900, *, app_window: bool = False) -> WebDriver:
    """Headless Chromium. ``app_window``: an app window (``--app``: no tab strip, no toolbar, like the desktop app's
    pywebview window) instead of a browser window, whose tab strip animates its throbber while a page loads."""
    options = webdriver.ChromeOptions()
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--window-size={width},{height}",
        *(["--app=data:text/html,"] if app_window else []),
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def app(stack: StackProcess, tmp_path: Path) -> Iterator[AppProcess]:
    proc = AppProcess(tmp_path / "app-data", stack.api_url, stack.anon_key).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    if shutil.which("chromium") is None or not Path(CHROMEDRIVER).exists():
        pytest.fail("chromium and chromium-driver are needed: apt-get install -y chromium chromium-driver")
    d = chrome()
    try:
        yield d
    finally:
        d.quit()


Locator = tuple[str, str]
REDRAWN = (
    StaleElementReferenceException,
    NoSuchElementException,
    ElementClickInterceptedException,
    ElementNotInteractableException,
)


def act(driver: WebDriver, locator: Locator, action: Callable[[WebElement], object], timeout: float = 30) -> None:
    """Find the displayed element and act on it in one attempt; if it was redrawn meanwhile, find it again."""

    def attempt(d: WebDriver) -> bool:
        try:
            element = d.find_element(*locator)
            if not element.is_displayed():
                return False
            action(element)
        except REDRAWN:
            return False
        return True

    WebDriverWait(driver, timeout, ignored_exceptions=REDRAWN).until(attempt)


def until_element(
    driver: WebDriver, locator: Locator, check: Callable[[WebElement], bool], timeout: float = 30
) -> None:
    """Wait until the element (located afresh each time) satisfies ``check``."""

    def attempt(d: WebDriver) -> bool:
        try:
            return bool(check(d.find_element(*locator)))
        except REDRAWN:
            return False

    WebDriverWait(driver, timeout, ignored_exceptions=REDRAWN).until(attempt)


def css(selector: str) -> Locator:
    return (By.CSS_SELECTOR, selector)


def click(driver: WebDriver, selector: str) -> None:
    """Click once it is clickable; the inbox may redraw under the pointer while the first sync lands."""
    act(driver, css(selector), lambda e: e.click())


def fill(driver: WebDriver, locator: Locator, text: str, timeout: float = 30) -> None:
    """Make the input hold exactly ``text``. Typing is not one step: when the field is redrawn half-way (a
    loaded machine, a reconnect), a plain retry types the whole text after what the first try left, so
    the value is checked and, if it differs, selected and typed over again."""

    def attempt(d: WebDriver) -> bool:
        try:
            element = d.find_element(*locator)
            if not element.is_displayed():
                return False
            if element.get_attribute("value") != text:
                element.send_keys(Keys.CONTROL, "a")
                element.send_keys(text)
            return d.find_element(*locator).get_attribute("value") == text
        except REDRAWN:
            return False

    WebDriverWait(driver, timeout, ignored_exceptions=REDRAWN).until(attempt)


def sign_in(driver: WebDriver, app: AppProcess, email: str, password: str) -> None:
    """Sign in through the page; returns once the app has moved on from the password step (the inbox, or
    the code step of a two-step account), and fails with the page's error when it stayed there."""
    driver.get(app.launch_url)  # the window the app opens carries the launch secret
    driver.get(app.url + "/signin")
    # NiceGUI holds events typed before its socket's handshake and sends each on its own 10 ms timer, which
    # can reorder keystrokes (the server then held a shorter password): type once the page is connected
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return window.did_handshake === true"))
    fill(driver, css("input[data-testid=email]"), email)
    fill(driver, css("input[data-testid=password]"), password)
    act(driver, css("input[data-testid=password]"), lambda e: e.send_keys(Keys.ENTER))

    def moved_on(d: WebDriver) -> bool:
        if not d.current_url.split("?")[0].endswith("/signin"):
            return True
        try:
            if any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, "input[data-testid=signin-code]")):
                return True
            error = " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, "[data-testid=signin-error]"))
        except REDRAWN:
            return False
        if error.strip():
            raise AssertionError(f"sign-in as {email} refused: {error}")
        return False

    WebDriverWait(driver, 120, ignored_exceptions=REDRAWN).until(moved_on)


def seed(db_url: str, users: Users, subject: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "insert into tickets (customer_id, assignee_id, subject, priority) values (%s, %s, %s,"
            " 'high') returning id",
            (users.customer.id, users.agent.id, subject),
        ).fetchone()
        assert row is not None
        for sender, text in (
            (users.customer, "The export button does nothing."),
            (users.agent, "Which browser are you using?"),
            (users.customer, "Chrome 131 on Windows 11."),
        ):
            conn.execute(
                "insert into messages (ticket_id, sender_id, content) values (%s, %s, %s)", (row[0], sender.id, text)
            )
    return str(row[0])


def test_sign_in_open_thread_and_send_in_chromium(
    app: AppProcess, driver: WebDriver, stack: StackProcess, users: Users
) -> None:
    subject = f"Export broken {time.time_ns() % 100000}"
    ticket_id = seed(stack.db_url, users, subject)
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    sign_in(driver, app, users.agent.email, users.agent.password)
    click(driver, f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]')
    try:
        wait.until(ec.visibility_of_element_located((By.XPATH, "//*[text()='Chrome 131 on Windows 11.']")))
    except TimeoutException:
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "browser-thread-failed.png"))
        raise
    composer = css("textarea[data-testid=composer]")
    act(
        driver,
        composer,
        lambda e: e.send_keys(
            "Thanks! A fix ships tomorrow;", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "I'll let you know.", Keys.ENTER
        ),
    )
    # the server's bubble (not the browser's instant echo), confirmed by the server
    wait.until(
        ec.visibility_of_element_located(
            (
                By.XPATH,
                "//*[@data-message-id and @data-message-id!='echo'][.//*[contains(text(), 'A fix ships tomorrow')]]"
                "[.//*[@data-testid='state-sent']]",
            )
        )
    )
    until_element(driver, composer, lambda e: e.get_attribute("value") == "")  # Enter sent and cleared it
    assert driver.title.endswith("SupportChat")
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "browser-thread.png"))
    with psycopg.connect(stack.db_url) as conn:
        stored = conn.execute(
            "select content from messages where ticket_id = %s and sender_id = %s order by created_at desc limit 1",
            (ticket_id, users.agent.id),
        ).fetchone()
    assert stored == ("Thanks! A fix ships tomorrow;\nI'll let you know.",), "Shift+Enter made a new line"


def test_keyboard_shortcuts_and_dark_mode_in_chromium(
    app: AppProcess, driver: WebDriver, stack: StackProcess, users: Users
) -> None:
    word = f"zebra{time.time_ns() % 10**6}"
    first = seed(stack.db_url, users, f"Keyboard A {word}")
    second = seed(stack.db_url, users, f"Keyboard B {word}")
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    sign_in(driver, app, users.agent.email, users.agent.password)
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f'[data-ticket-id="{second}"]')))

    act(driver, (By.TAG_NAME, "body"), lambda e: e.send_keys("?"))
    wait.until(ec.visibility_of_element_located((By.XPATH, "//*[text()='Keyboard shortcuts']")))
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    wait.until(ec.invisibility_of_element_located((By.XPATH, "//*[text()='Keyboard shortcuts']")))

    ActionChains(driver).key_down(Keys.CONTROL).send_keys("k").key_up(Keys.CONTROL).perform()
    search = css("input[data-testid=search-input]")
    act(driver, search, lambda e: e.send_keys(f"Keyboard A {word}"))
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=search-hit]")))
    act(driver, search, lambda e: e.send_keys(Keys.ENTER))
    pane = f'[data-testid=ticket-pane][data-ticket-id="{first}"]'
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, pane)))

    # the inbox lists newest activity first: B (seeded last) is above A, so Alt+Up goes from A to B
    ActionChains(driver).key_down(Keys.ALT).send_keys(Keys.ARROW_UP).key_up(Keys.ALT).perform()
    wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, f'[data-testid=ticket-pane][data-ticket-id="{second}"]'))
    )
    ActionChains(driver).key_down(Keys.ALT).send_keys(Keys.ARROW_DOWN).key_up(Keys.ALT).perform()
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, pane)))

    composer = css(f"{pane} textarea[data-testid=composer]")
    act(driver, composer, lambda e: e.send_keys("All done, closing this one."))
    act(driver, composer, lambda e: e.send_keys(Keys.CONTROL, Keys.ENTER))  # a modifier holds for the keys after it

    def resolved(_: object) -> bool:
        with psycopg.connect(stack.db_url) as conn:
            row = conn.execute(
                "select status, (select count(*) from messages where ticket_id = t.id and content ="
                " 'All done, closing this one.') from tickets t where id = %s",
                (first,),
            ).fetchone()
        return row == ("resolved", 1)

    WebDriverWait(driver, 30, ignored_exceptions=REDRAWN).until(resolved)

    click(driver, "[data-testid=dark-toggle]")
    until_element(driver, (By.TAG_NAME, "body"), lambda e: "body--dark" in (e.get_attribute("class") or ""))
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "browser-dark.png"))


def test_scrolling_up_loads_older_messages_in_chromium(
    app: AppProcess, driver: WebDriver, stack: StackProcess, users: Users
) -> None:
    from tests.test_app_features import seed_long_thread

    ticket_id = seed_long_thread(stack.db_url, users.customer2, users.agent2, 140)
    wait = WebDriverWait(driver, 30, ignored_exceptions=REDRAWN)
    sign_in(driver, app, users.agent2.email, users.agent2.password)
    click(driver, f'[data-ticket-id="{ticket_id}"][data-testid="ticket-row"]')
    wait.until(ec.visibility_of_element_located((By.XPATH, "//*[text()='Line 140']")))
    count = "return document.querySelectorAll('[data-testid=thread] [data-message-id]').length"
    assert driver.execute_script(count) == 30, "opens at the newest page only"
    assert driver.execute_script(
        "const t = document.querySelector('[data-testid=thread]'); return Math.abs(t.scrollTop) < 5"
    ), "opens scrolled to the bottom"
    for expected in (80, 130, 140):
        driver.execute_script(
            "const t = document.querySelector('[data-testid=thread]');"
            " t.scrollTop = -(t.scrollHeight - t.clientHeight);"
        )  # column-reverse: top is negative
        wait.until(lambda d, n=expected: d.execute_script(count) == n)
    wait.until(ec.presence_of_element_located((By.XPATH, "//*[text()='Beginning of the conversation']")))
