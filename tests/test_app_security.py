"""Issue 10 item 5 in the app, through NiceGUI's simulated `User`: the settings page refuses a plain
http:// server that is not on this computer (passwords and tokens would cross the network in the
clear), and the sign-in page says so when the server uses the Supabase CLI's public demo keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localbase.keys import DEMO_ANON_KEY
from supportchat_app.pages.settings import check_server
from tests.stackproc import StackProcess
from tests.test_app_flows import WAIT, app_data, eventually, running_app  # noqa: F401 (the fixture)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://attacker.example", True),
        ("http://10.0.0.5:54321", True),
        ("http://127.0.0.1.attacker.example", True),
        ("https://abcd.supabase.co", False),
        ("http://127.0.0.1:54321", False),
        ("http://localhost:54321", False),
        ("http://[::1]:54321", False),
    ],
)
def test_plain_http_only_for_this_computer(url: str, refused: bool, stack: StackProcess) -> None:
    problem = check_server(url, stack.anon_key)
    assert (problem is not None and "https://" in problem) is refused


async def test_settings_page_refuses_a_remote_http_server(app_data: Path, stack: StackProcess) -> None:
    async with running_app() as user:
        await user.open("/settings")
        user.find(marker="url").type("http://support.example.com")
        user.find(marker="anon-key").type(stack.anon_key)
        user.find(marker="connect").click()
        await eventually(lambda: "https://" in user.find(marker="settings-message").elements.pop().text, "the refusal")
        saved = json.loads((app_data / "settings.json").read_text()) if (app_data / "settings.json").exists() else {}
        assert "url" not in saved, "a refused address is never saved"


async def test_sign_in_page_warns_about_public_demo_keys(
    app_data: Path,
    stack: StackProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_app() as user:
        await user.open("/signin")
        await user.should_see(marker="email", retries=WAIT)
        await user.should_not_see(marker="public-keys")
    monkeypatch.setenv("SUPABASE_ANON_KEY", DEMO_ANON_KEY)  # e.g. a `supabase start` project, or our demo stack
    async with running_app() as user:
        await user.open("/signin")
        await user.should_see(marker="public-keys", retries=WAIT)
        await user.should_see("public demo keys")
