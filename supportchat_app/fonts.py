"""NiceGUI's ``fonts.css`` served with ``font-display: swap`` on its text faces: a fresh browser (or window) draws
the page's text at once in the fallback fonts of the body's stack and swaps Roboto in when its files arrive.

Why: NiceGUI's ``fonts.css`` declares Roboto's ``@font-face`` rules without ``font-display``, which Chromium treats as
``block``: text in Roboto stays invisible for up to three seconds while the files load (the walkthrough saw blank
labels on a first start). A face's ``font-display`` cannot be changed from another stylesheet, and a second set of
Roboto faces would double the rules the page parses; so the app answers the stylesheet's own address (ahead of
NiceGUI's static mount) with NiceGUI's file, ``font-display: swap`` added to each face that has none. The icon faces
keep NiceGUI's ``block``: an icon drawn in a fallback font would show its ligature's name ("expand_more") as text.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import nicegui
from nicegui import app
from nicegui.nicegui import static_files
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STATIC = Path(nicegui.__file__).parent / "static"  # NiceGUI's static files
FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}")
PATH = f"/_nicegui/{nicegui.__version__}/static/fonts.css"
SWAP = "font-display: swap;"


def swap(css: str) -> str:
    """``css`` with ``font-display: swap`` in each ``@font-face`` rule that sets no ``font-display``."""

    def one(face: re.Match[str]) -> str:
        rule = face.group(0)
        return rule if "font-display" in rule else rule.replace("{", "{\n  " + SWAP, 1)

    return FONT_FACE.sub(one, css)


@functools.cache
def _served() -> bytes:
    return swap((STATIC / "fonts.css").read_text()).encode()


async def _fonts_css(_request: Request) -> Response:
    # cached as NiceGUI caches the static file it stands for
    age = static_files.max_cache_age
    return Response(_served(), media_type="text/css", headers={"Cache-Control": f"public, max-age={age}"})


def install() -> None:
    """Answer NiceGUI's fonts.css address with the swapping copy (first among the routes: the static mount, added
    when NiceGUI was imported, would answer it otherwise)."""
    if not any(isinstance(route, Route) and route.path == PATH for route in app.router.routes):
        app.router.routes.insert(0, Route(PATH, _fonts_css, methods=["GET", "HEAD"]))
