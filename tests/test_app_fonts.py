"""Text is drawn at once in a fresh browser (supportchat_app/fonts.py): the fonts.css the workspace page imports, as
the real app process serves it, gives every Roboto face ``font-display: swap`` (NiceGUI's own file sets none, which
Chromium treats as ``block``: labels stayed blank while the font loaded) and leaves the icon faces at ``block`` (a
fallback font would spell an icon's name); the inbox shell's inline faces swap too."""

from __future__ import annotations

import re

import httpx

from supportchat_app.components import shell_base
from supportchat_app.fonts import FONT_FACE
from tests.appproc import AppProcess
from tests.test_app_launch import signed_in_app  # noqa: F401 (the fixture)

FONTS_CSS = re.compile(r'@import url\("(/_nicegui/[^"]+/static/fonts\.css)"\)')


def _faces(css: str) -> tuple[list[str], list[str]]:
    faces = FONT_FACE.findall(css)
    return [f for f in faces if '"Roboto"' in f], [f for f in faces if '"Material Icons' in f]


def test_the_served_fonts_css_swaps_roboto_and_blocks_icons(signed_in_app: tuple[AppProcess, str]) -> None:
    app, ticket = signed_in_app
    with httpx.Client(timeout=60) as browser:
        assert browser.get(app.launch_url).status_code == 303
        page = browser.get(app.url + f"/?t={ticket}", follow_redirects=True)
        assert page.status_code == 200
        found = FONTS_CSS.search(page.text)
        assert found is not None, "the page imports NiceGUI's fonts.css"
        served = browser.get(app.url + found.group(1))
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/css")
    assert "max-age=" in served.headers["cache-control"]
    text, icons = _faces(served.text)
    assert len(text) > 10 and icons
    assert all("font-display: swap;" in face for face in text), [f for f in text if "swap" not in f][:1]
    assert all("font-display: block;" in face for face in icons)
    # the shell's copy of the faces, painted before the framework's stylesheets arrive, swaps as well
    shell = shell_base.style(page.text)
    assert shell is not None
    shell_text, shell_icons = _faces(shell)
    assert shell_text and all("font-display: swap;" in face for face in shell_text)
    assert shell_icons and all("font-display: block;" in face for face in shell_icons)
