"""The app answers uncompressed (supportchat_app/main.py: it listens on 127.0.0.1 only, where gzip costs the one
event loop CPU while the browser paints the first rows and saves nothing on the wire), through the real app process:
the workspace page and the framework's static files, to a client that asks for gzip.
"""

from __future__ import annotations

import re

import httpx

from tests.appproc import AppProcess
from tests.test_app_launch import signed_in_app  # noqa: F401 (the fixture)

STATIC = re.compile(r'"(/_nicegui/[^"]+/static/[\w.-]+\.(?:css|js))"')  # NiceGUI's @imports and scripts


def test_pages_and_static_files_are_sent_uncompressed(signed_in_app: tuple[AppProcess, str]) -> None:
    app, ticket = signed_in_app
    with httpx.Client(timeout=60, headers={"Accept-Encoding": "gzip"}) as browser:
        assert browser.get(app.launch_url).status_code == 303
        page = browser.get(app.url + f"/?t={ticket}", follow_redirects=True)
        assert page.status_code == 200
        assert "content-encoding" not in page.headers, page.headers.get("content-encoding")
        assert len(page.content) > 500  # large enough for the middleware to have compressed it (its minimum)
        files = STATIC.findall(page.text)
        assert files, "the page names NiceGUI's static files"
        for path in files[:3]:
            sent = browser.get(app.url + path)
            assert sent.status_code == 200 and len(sent.content) > 500, path
            assert "content-encoding" not in sent.headers, (path, sent.headers.get("content-encoding"))
