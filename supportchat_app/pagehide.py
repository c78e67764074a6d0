"""NiceGUI's "tab closed" mark set when the page is hidden instead of in a ``beforeunload`` handler (issue 14,
bench `inbox_5k`: first paint).

Why: NiceGUI's script sets ``window.onbeforeunload`` to mark the tab as closed in ``sessionStorage`` (so a reload
keeps the tab's id and a duplicated tab gets a new one). A page with a ``beforeunload`` handler makes the
browser ask that page before it even sends the next page's request: the navigation waits for an answer from the
old page's main thread — the browser's trace of a reload shows the round trip inside the load (3-8 ms when that
thread is free; a page that just mounted is busy with its socket and its first updates, and then the next
request waits for its task to end). ``pagehide`` fires on the same occasions (a reload, a navigation away, the tab
closed) without holding the navigation, so the same function is moved there once NiceGUI's scripts ran (they
are deferred: all have run before ``DOMContentLoaded``). What NiceGUI does with the mark is unchanged.
"""

from __future__ import annotations

from nicegui import Client, ui

SCRIPT = (
    "<script>document.addEventListener('DOMContentLoaded',()=>{const mark=window.onbeforeunload;"
    "if(typeof mark!=='function')return;window.onbeforeunload=null;window.addEventListener('pagehide',mark);});"
    "</script>"
)


def install() -> None:
    """Add the script to every page (once per process)."""
    if SCRIPT not in Client.shared_head_html:
        ui.add_head_html(SCRIPT, shared=True)
