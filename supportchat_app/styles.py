"""The app's Tailwind classes as a stylesheet built ahead, instead of NiceGUI's in-page Tailwind compiler (issue 15
item 4, bench `e2e_latency`: what a message costs the two browsers).

Why: NiceGUI's page loads Tailwind v4's browser runtime (``tailwindcss.min.js``, 260 kB), which compiles the
utilities in the page: a MutationObserver on the whole document that, for every batch of mutations adding an element
or changing a class, walks every element's class list (``querySelectorAll("[class]")``) and, when a class is new,
replaces its whole stylesheet — 20-30 ms of script a message in each of the agent's and the customer's pages in a V8
profile, plus parsing and compiling the runtime on every page load. The app runs with ``ui.run(tailwind=False)``
(which also drops NiceGUI's ``headwind.css``: it only undoes Tailwind's ``rotate-*`` on Quasar's classes of the same
name, and this stylesheet has none of those) and serves ``static/tailwind.css``: what Tailwind's CLI makes from the
app's sources (scripts/tailwind/: the same compiler version, the same ``dark`` variant as NiceGUI's page declares),
in the same cascade layers NiceGUI's page orders (``theme, base, …, components, utilities``), so the page's cascade
is the one the runtime made. tests/test_tailwind_css.py checks that the file is what the sources make and
tests/test_browser_tailwind.py that every class on the app's pages the runtime would style is in it.

The file is served under a name carrying its digest, cached for a year: a page load after the first takes it from
the browser's cache, and a new build is a new name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from nicegui import Client, app, ui

CSS_FILE = Path(__file__).resolve().parent / "static" / "tailwind.css"
ROUTE = "/_sc/tailwind"
CACHE_S = 365 * 24 * 3600


def url() -> str:
    """The stylesheet's address: its content's digest in the name."""
    digest = hashlib.sha256(CSS_FILE.read_bytes()).hexdigest()[:16]
    return f"{ROUTE}-{digest}.css"


def install() -> None:
    """Serve the stylesheet and link it from every page's head (once per app build)."""
    path = app.add_static_file(local_file=CSS_FILE, url_path=url(), max_cache_age=CACHE_S)
    link = f'<link rel="stylesheet" href="{path}" />'
    if link not in Client.shared_head_html:
        ui.add_head_html(link, shared=True)
