"""The PyInstaller build, tested as agents get it: build with build.spec once per session, then run the binary.

- `supportchat doctor --json` from the bundle reports the session's localbase healthy (and the bundle complete);
- the frozen app served headless (`--web`) signs an agent in through Debian chromium, sends a reply that
  the server then holds, exits cleanly on SIGTERM, and its doctor then reports the agent's cache with
  nothing unsent;
- with nothing configured the frozen app runs the demo stack as `supportchat stack` from the bundle, the
  doctor finds it, and SIGTERM stops the app, the stack and its PostgreSQL;
- under Xvfb the frozen app opens its native Qt WebEngine window on the sign-in page (screenshot in
  artifacts/frozen-native-signin.png), and after SIGTERM no window or helper process is left.

The build goes to $TMPDIR/supportchat-frozen, built under an exclusive file lock that the session then
holds shared while it runs the binary (a parallel session or the benchmark waits instead of rebuilding
under it); bench/frozen.py reuses it. SUPPORTCHAT_FROZEN_REUSE=1 skips the build when one is there, only
for iterating on these tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from localbase.postgres import free_port
from tests.appproc import launch_url_in
from tests.conftest import Users
from tests.stackproc import StackProcess
from tests.test_sync_support import seed_ticket

pytestmark = pytest.mark.frozen

ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = Path(tempfile.gettempdir()) / "supportchat-frozen"
ARTIFACTS = ROOT / "artifacts"
EXE_NAME = "supportchat.exe" if sys.platform == "win32" else "supportchat"


@contextlib.contextmanager
def build_lock(root: Path = BUILD_ROOT, *, shared: bool = False) -> Iterator[None]:
    """Exclusive to build; shared while running the build, so nobody rebuilds it under a running test."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def binary_path(root: Path = BUILD_ROOT) -> Path:
    return root / "dist" / "supportchat" / EXE_NAME


def build(root: Path = BUILD_ROOT) -> Path:
    with build_lock(root):
        return _pyinstaller(root)


def _pyinstaller(root: Path) -> Path:
    """`pyinstaller build.spec` into root/dist (work files in root/work); returns the frozen executable."""
    log = root / "build.log"
    with log.open("w") as out:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "PyInstaller",
                str(ROOT / "build.spec"),
                "--noconfirm",
                "--distpath",
                str(root / "dist"),
                "--workpath",
                str(root / "work"),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
            check=False,
        )
    assert proc.returncode == 0, f"pyinstaller failed; see {log}:\n" + log.read_text()[-3000:]
    exe = binary_path(root)
    assert exe.is_file() and os.access(exe, os.X_OK), exe
    return exe


def app_env(stack: StackProcess, data: Path, **extra: str) -> dict[str, str]:
    """The frozen app pointed at the test stack, with its own data dir and a file session store."""
    # PYTEST_CURRENT_TEST would make NiceGUI believe it runs under its own screen tests
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DISPLAY", "WAYLAND_DISPLAY", "PYTHONPATH"} and not k.startswith("PYTEST")
    }
    env.update(
        SUPABASE_URL=stack.api_url,
        SUPABASE_ANON_KEY=stack.anon_key,
        SUPPORTCHAT_DATA_DIR=str(data),
        SUPPORTCHAT_SESSION_STORE="file",
        **extra,
    )
    return env


def wait_for_page(url: str, timeout: float, proc: subprocess.Popen[Any] | None = None) -> float:
    """Seconds until `url` answers (fails early if the process died).

    Without the launch cookie the app answers its signed-out page (403): the server is up all the same.
    """
    started = time.monotonic()
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the app exited with {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except urllib.error.HTTPError as exc:
            if exc.code == 403:
                return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{url} did not answer within {timeout}s")
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in task.read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (the native window process, QtWebEngineProcess, the demo stack...)."""
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    return False


def assert_all_gone(pids: list[int], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {p: Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:200] for p in pids if alive(p)}
    for pid in left:  # a failing run must not leave them behind on the machine
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes outlived the app: {left}"


CLEAN_EXITS = (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM it handled once its graceful shutdown is done


def stop(proc: subprocess.Popen[Any], timeout: float = 30) -> int:
    """SIGTERM, as a desktop session or a service manager stops a program; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"the app did not exit within {timeout}s of SIGTERM") from None
    return int(proc.returncode)


@pytest.fixture(scope="session")
def frozen() -> Iterator[Path]:
    # SUPPORTCHAT_FROZEN_REUSE=1 only for iterating on these tests; CI always builds
    reuse = os.environ.get("SUPPORTCHAT_FROZEN_REUSE") == "1" and binary_path().is_file()
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with (BUILD_ROOT / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        exe = binary_path() if reuse else _pyinstaller(BUILD_ROOT)
        fcntl.flock(lock, fcntl.LOCK_SH)  # a parallel session's build waits until this one is done with the binary
        yield exe


def test_frozen_bundle_leaves_out_pillows_program_starters(frozen: Path) -> None:
    """Review14: a file declared as an image may hold PostScript, which Pillow's EPS plugin hands to Ghostscript.
    The app opens images only with the declared type's decoder; the bundle also leaves out the modules of Pillow
    that start programs (EPS: Ghostscript, ImageShow: a viewer, ImageGrab: a screenshot tool)."""
    toc = (BUILD_ROOT / "work" / "build" / "PYZ-00.toc").read_text()
    assert "'PIL.PngImagePlugin'" in toc and "'PIL.JpegImagePlugin'" in toc, "the thumbnails' decoders are in"
    for module in ("PIL.EpsImagePlugin", "PIL.ImageShow", "PIL.ImageGrab"):
        assert f"'{module}'" not in toc, module


def test_frozen_doctor_reports_localbase_healthy(frozen: Path, stack: StackProcess, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(frozen), "doctor", "--json"],
        env=app_env(stack, tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    report = json.loads(lines[0])
    assert proc.returncode == 0 and report["ok"] is True, report
    checks = {c["name"]: c for c in report["checks"]}
    assert "frozen build" in checks["version"]["detail"]
    assert checks["bundle"]["ok"] and "Qt WebEngine locales" in checks["bundle"]["detail"]
    assert "QtWebEngineProcess" in checks["webview"]["detail"]
    assert "no display" in checks["webview"]["detail"]
    for name in ("server", "auth", "rest", "schema", "realtime"):
        assert checks[name]["ok"], checks[name]


def seeded_ticket(stack: StackProcess, users: Users, subject: str) -> str:
    return seed_ticket(
        stack.db_url,
        users.customer,
        users.agent,
        subject,
        messages=[(users.customer, "Hello, my export is stuck at 99%.")],
    )


def chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1280,820",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def test_frozen_app_headless_agent_signs_in_sends_and_exits_on_sigterm(
    frozen: Path, stack: StackProcess, users: Users, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.test_browser_app import act, css, fill

    ticket = seeded_ticket(stack, users, "Frozen build: export stuck")
    port = free_port()
    log = tmp_path / "app.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(frozen), "--web", "--port", str(port), "--no-browser"],
            env=app_env(stack, tmp_path / "data"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    driver = None
    try:
        wait_for_page(f"http://127.0.0.1:{port}/signin", 60, proc)
        driver = chromium()
        wait = WebDriverWait(driver, 30)
        driver.get(launch_url_in(log))  # the launch secret the app printed lets this browser in
        driver.get(f"http://127.0.0.1:{port}/signin")
        # typed only once the page's socket is connected: NiceGUI sends keystrokes typed before its handshake each
        # on a timer of its own, which can reorder them (tests/test_browser_app.py's sign_in); and the fields are
        # found afresh when a redraw replaced them (act, fill)
        handshake = "return window.did_handshake === true"
        wait.until(lambda d: d.execute_script(handshake))
        fill(driver, css('input[data-testid="email"]'), users.agent.email)
        fill(driver, css('input[data-testid="password"]'), users.agent.password)
        act(driver, css('[data-testid="signin"]'), lambda e: e.click())
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f'[data-ticket-id="{ticket}"]')))
        driver.get(f"http://127.0.0.1:{port}/?t={ticket}")
        wait.until(lambda d: d.execute_script(handshake))
        reply = f"Frozen build reply {port}: please retry the export now."
        act(driver, css('textarea[data-testid="composer"]'), lambda e: e.send_keys(reply, Keys.ENTER))
        deadline = time.monotonic() + 30
        held: list[tuple[Any, ...]] = []
        while time.monotonic() < deadline and not held:
            with psycopg.connect(stack.db_url, autocommit=True) as conn:
                held = conn.execute(
                    "select sender_id::text, is_internal from public.messages where ticket_id = %s and content = %s",
                    (ticket, reply),
                ).fetchall()
            time.sleep(0.2)
        assert held == [(users.agent.id, False)], "the server does not hold the agent's reply"
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '[data-testid="state-sent"]')))
        # the app's Tailwind stylesheet came with the bundle and styles the page (supportchat_app/styles.py)
        rules = driver.execute_script(
            "const link = document.querySelector('link[href*=\"/_sc/tailwind-\"]');"
            " return link && link.sheet ? link.sheet.cssRules.length : -1"
        )
        assert rules > 10, f"the Tailwind stylesheet did not load in the frozen app ({rules} rules)"
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "frozen-web-thread.png"))
    finally:
        if driver is not None:
            driver.quit()
        below = descendants(proc.pid)
        code = stop(proc)
    assert_all_gone(below)
    assert code in CLEAN_EXITS, f"exit code {code} after SIGTERM; log:\n{log.read_text()[-3000:]}"
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/signin", timeout=2)
    # the support engineer's view of what the frozen app left: the agent's cache, nothing unsent
    proc_doctor = subprocess.run(
        [str(frozen), "doctor", "--json"],
        env=app_env(stack, tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(proc_doctor.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert proc_doctor.returncode == 0, report
    assert checks["cache"]["detail"].startswith(f"{users.agent.id} (signed in): schema ")
    assert checks["outbox"]["detail"] == "0 pending, 0 failed"


def free_display() -> int:
    for number in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise AssertionError("no free X display number")


@contextlib.contextmanager
def xvfb(width: int = 1400, height: int = 900) -> Iterator[str]:
    number = free_display()
    proc = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def native_env(stack: StackProcess, data: Path, display: str) -> dict[str, str]:
    return app_env(
        stack,
        data,
        DISPLAY=display,
        PYWEBVIEW_GUI="qt",
        QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox --disable-gpu",
        XDG_RUNTIME_DIR=str(data.parent / "xdg"),
    )


def window_titles(display: str) -> list[str]:
    out = subprocess.run(
        ["xwininfo", "-root", "-tree"],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout
    return [line.split('"')[1] for line in out.splitlines() if line.count('"') >= 2]


def screenshot(display: str, path: Path) -> None:
    subprocess.run(
        ["import", "-window", "root", str(path)],
        env={**os.environ, "DISPLAY": display},
        check=True,
        timeout=30,
        capture_output=True,
    )


def primary_pixels(path: Path) -> int:
    """Pixels of the app's primary blue (#2563eb): the sign-in button and the logo, once the page is drawn."""
    from PIL import Image, ImageChops

    with Image.open(path) as image:
        channels = image.convert("RGB").split()
    masks = [
        channel.point(lambda v, c=target: 255 if abs(v - c) < 24 else 0)
        for channel, target in zip(channels, (37, 99, 235), strict=True)
    ]
    both = ImageChops.multiply(ImageChops.multiply(masks[0], masks[1]), masks[2])
    return both.histogram()[255]


def wait_for_native_signin(display: str, shot: Path, proc: subprocess.Popen[Any], timeout: float) -> float:
    """Seconds until a SupportChat window shows the drawn sign-in page (its blue button on screen)."""
    started = time.monotonic()
    while True:
        assert proc.poll() is None, f"the app exited with {proc.returncode}"
        if any("SupportChat" in title for title in window_titles(display)):
            screenshot(display, shot)
            if primary_pixels(shot) > 3000:
                return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"no sign-in page in a native window within {timeout}s"
        time.sleep(0.25)


@dataclass
class NativeRun:
    """One run of the frozen app in a native window under Xvfb, stopped with SIGTERM."""

    titles: list[str]
    below: list[list[bytes]]  # argv of every process under the app while its window was up
    code: int
    left: dict[int, bytes]  # processes still alive after the app exited (killed afterwards)
    titles_after: list[str]
    log: str


@pytest.fixture(scope="module")
def native_run(frozen: Path, stack: StackProcess, tmp_path_factory: pytest.TempPathFactory) -> NativeRun:
    tmp = tmp_path_factory.mktemp("native")
    port = free_port()
    log = tmp / "native.log"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "frozen-native-signin.png"
    with xvfb() as display:
        with log.open("w") as out:
            proc = subprocess.Popen(
                [str(frozen), "--port", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=native_env(stack, tmp / "data", display),
            )
        try:
            wait_for_page(f"http://127.0.0.1:{port}/signin", 60, proc)
            wait_for_native_signin(display, shot, proc, 90)
            titles = window_titles(display)
            below = descendants(proc.pid)
            argv = [Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0") for p in below]
        finally:
            code = stop(proc)
        # what is still there after as long as assert_all_gone gives outlived the app: Qt WebEngine's helpers take
        # a moment to go after their parent on a loaded machine (a fixed 3 s was a race), a daemon left behind never
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (
            any(alive(p) for p in below) or any("SupportChat" in title for title in window_titles(display))
        ):
            time.sleep(0.2)
        left = {p: Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:160] for p in below if alive(p)}
        titles_after = window_titles(display)
        for pid in left:  # never leave them behind on the machine, whatever the tests conclude
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return NativeRun(titles, argv, code, left, titles_after, log.read_text())


def test_frozen_app_opens_native_window_on_signin_under_xvfb(frozen: Path, native_run: NativeRun) -> None:
    # wait_for_native_signin saw the drawn sign-in page (its blue button); the window carries the page's title
    assert "Sign in · SupportChat" in native_run.titles, native_run.titles
    # the window runs in its own process (the same executable, re-entered through freeze_support) with Qt
    # WebEngine's helper processes below it; none of them is a second copy of the app
    assert any(b"QtWebEngineProcess" in argv[0] for argv in native_run.below), native_run.below
    assert not any(argv[:2] == [str(frozen).encode(), b"--port"] for argv in native_run.below), native_run.below
    assert native_run.code in CLEAN_EXITS, f"exit code {native_run.code} after SIGTERM:\n{native_run.log[-3000:]}"
    assert "Traceback" not in native_run.log, native_run.log[-3000:]


def test_frozen_native_app_leaves_no_window_or_process_behind_after_sigterm(native_run: NativeRun) -> None:
    # NiceGUI's window process is a multiprocessing daemon, ended only by a normal interpreter exit; uvicorn
    # re-raises SIGTERM after its graceful shutdown, so without the app mapping SIGTERM to Ctrl+C's path the
    # window (and Qt WebEngine's processes) outlive the app, still on screen
    assert not native_run.left, f"processes outlived the app: {native_run.left}"
    assert not any("SupportChat" in title for title in native_run.titles_after), native_run.titles_after


def test_frozen_app_runs_the_demo_stack_from_the_bundle_and_stops_it(frozen: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "SUPABASE_", "DISPLAY", "WAYLAND_DISPLAY"))
    }
    env.update(SUPPORTCHAT_DATA_DIR=str(data), SUPPORTCHAT_SESSION_STORE="file")
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(frozen), "--web", "--port", str(port), "--no-browser"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 120
        page = ""
        http = httpx.Client(timeout=5)  # its cookie jar keeps the launch cookie, as the app's window does
        while "demo-agent" not in page:
            assert proc.poll() is None, f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no demo accounts on the sign-in page:\n{page[-2000:]}"
            time.sleep(0.25)
            with contextlib.suppress(httpx.HTTPError):
                if not http.cookies and (launch := launch_url_in(log)):
                    http.get(launch)
                page = http.get(f"http://127.0.0.1:{port}/signin").text
        http.close()
        # the demo server is this same executable (`supportchat stack ...`), never `python -m localbase`
        stacks = [
            pid
            for pid in children(proc.pid)
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [str(frozen).encode(), b"stack"]
        ]
        assert len(stacks) == 1, [Path(f"/proc/{p}/cmdline").read_bytes() for p in children(proc.pid)]
        pidfile = data / "demo-stack" / "pgdata" / "postmaster.pid"
        postmaster = int(pidfile.read_text().split()[0])
        assert alive(postmaster)
        # with nothing configured, doctor finds and checks the app's running demo server
        doctor = subprocess.run(
            [str(frozen), "doctor", "--json"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        report = json.loads(doctor.stdout)
        checks = {c["name"]: c for c in report["checks"]}
        assert doctor.returncode == 0, report
        assert f"embedded demo server, pid {stacks[0]}" in checks["configured server"]["detail"]
        assert checks["realtime"]["ok"] and checks["schema"]["ok"]
    finally:
        code = stop(proc, timeout=60)
    text = log.read_text()
    assert code in CLEAN_EXITS, f"exit code {code} after SIGTERM; log:\n{text[-3000:]}"
    assert_all_gone([*stacks, postmaster], timeout=30)
    assert not pidfile.exists(), "PostgreSQL did not shut down cleanly (postmaster.pid left behind)"
    stack_log = data / "demo-stack.log"
    assert "Traceback" not in (stack_log.read_text() if stack_log.exists() else ""), stack_log.read_text()[-3000:]
