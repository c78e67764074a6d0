"""The framework's few styles the inbox shell's rows use, scoped to the shell, so the first chunk of the workspace
page needs none of the framework's stylesheets (issue 14, bench `inbox_5k`: first paint).

Why: the shell (components/inbox_shell.py) is drawn with a handful of Quasar's and NiceGUI's rules — the body font
(Roboto, 14 px, line height 1.5), border-box sizing, the icon font and ``.q-icon``, the palette classes of its
avatars and chips. NiceGUI's document start pulls those in with render-blocking ``@import``s of Quasar's whole
stylesheet (~250 KB), its fonts and its own: Chromium then parses and indexes some 4,000 rules, matches the rows
against them and waits on them before the inline script that places the shell may run — all before the rows'
first frame. Here the first chunk carries only these rules (a few KB), scoped to ``#sc-inbox-shell`` so they
change nothing else on the page; NiceGUI's stylesheets follow in the second chunk, before the page's elements,
which are only drawn once the framework has started (pages/head_start.py).

Where the rules come from: the palette colours, Quasar's brand variables and the fonts' ``@font-face`` rules are
read from NiceGUI's own static files (so an upgrade that changes them changes the shell too), the few structural
rules are Quasar's as they stand (tests/test_browser_inbox_shell.py checks the shell looks the same with and without
the framework's stylesheets, so a drift shows). The colour classes are a closed set: the shell's avatar, status and
priority colours (fmt.AVATAR_COLORS, inbox_list's STATUS_COLORS and PRIORITY_COLORS).
"""

from __future__ import annotations

import functools
import logging
import re

from supportchat_app import fmt
from supportchat_app.components import inbox_list
from supportchat_app.fonts import FONT_FACE, STATIC, swap

log = logging.getLogger(__name__)

SHELL = "#sc-inbox-shell"
# the shell's colour classes: avatars (and the support avatar), viewers, status and priority chips
COLORS = sorted(
    {*fmt.AVATAR_COLORS, "blue-grey-2", "grey", *inbox_list.STATUS_COLORS.values()}
    | set(inbox_list.PRIORITY_COLORS.values())
)
# Roboto's weights the rows are drawn in (400, 500, 700; their 600 is drawn with 700, as when all are declared)
WEIGHTS = (400, 500, 700)
IMPORT = re.compile(r'@import url\("([^"]*)/fonts\.css"\)')  # NiceGUI's document start: where its static files are

# Quasar's rules the rows rely on (quasar.unimportant.css: body, box-sizing, .q-icon; fonts.css: .material-icons),
# scoped to the shell; `{s}` is the shell's selector
STRUCTURE = """
{s} {{ font-family: "Roboto", "-apple-system", "Helvetica Neue", Helvetica, Arial, sans-serif; font-size: 14px;
  line-height: 1.5; -webkit-font-smoothing: antialiased; -webkit-text-size-adjust: 100%; box-sizing: border-box; }}
{s} *, {s} *:before, {s} *:after {{ box-sizing: inherit; }}
.body--dark {s} {{ color: #fff; }}
{s} .q-icon {{ line-height: 1; width: 1em; height: 1em; flex-shrink: 0; letter-spacing: normal; text-transform: none;
  white-space: nowrap; word-wrap: normal; text-align: center; position: relative; box-sizing: content-box;
  fill: currentColor; direction: ltr; }}
{s} .material-icons {{ font-family: "Material Icons"; font-weight: normal; font-style: normal; font-size: 24px;
  line-height: 1; letter-spacing: normal; text-transform: none; display: inline-block; white-space: nowrap;
  word-wrap: normal; direction: ltr; -webkit-font-feature-settings: "liga"; -webkit-font-smoothing: antialiased; }}
{s} .q-icon, {s} .material-icons {{ user-select: none; cursor: inherit; font-size: inherit; display: inline-flex;
  align-items: center; justify-content: center; vertical-align: middle; }}
.nicegui-error-popup[aria-hidden="true"] {{ opacity: 0; visibility: hidden; }}
"""


def _palette(css: str) -> str:
    """The shell's colour classes as Quasar defines them, scoped to the shell."""
    out = []
    for name in COLORS:
        for kind, prop in (("bg", "background"), ("text", "color")):
            found = re.search(rf"\.{kind}-{re.escape(name)}\{{{prop}:([^!;}}]+)", css)
            if found is not None:
                out.append(f"{SHELL} .{kind}-{name}{{{prop}:{found.group(1)}!important}}")
    return "".join(out)


def _brand(css: str) -> str:
    """Quasar's brand colour variables (``--q-positive``, ...), for the palette classes that use them; the primary
    is the app's own (theme.py gives it to Quasar when the app starts: its ``--sc-own``). Scoped to the shell, they
    also hold once Quasar's stylesheet came (its ``.bg-primary`` would draw its default blue until then)."""
    found = re.search(r":root\{(--q-primary:[^}]*)\}", css)
    return f"{SHELL}{{{found.group(1)};--q-primary:var(--sc-own)}}" if found else ""


def _used(face: str) -> bool:
    if 'font-family: "Material Icons";' in face:
        return True
    weight = re.search(r"font-weight: (\d+);", face)
    return 'font-family: "Roboto";' in face and weight is not None and int(weight.group(1)) in WEIGHTS


def _faces(fonts_css: str, base: str) -> str:
    """The ``@font-face`` rules of the fonts the rows use, their files addressed from the page; the text faces swap
    (fonts.py: the rows' text is drawn at once, in the stack's fallback until Roboto is in)."""
    faces = [f for f in FONT_FACE.findall(swap(fonts_css)) if _used(f)]
    return "".join(faces).replace("url(fonts/", f"url({base}/fonts/")


@functools.lru_cache(maxsize=8)  # one per static base URL; bounded, as the base follows a request header
def _css(base: str) -> str:
    important = (STATIC / "quasar.important.prod.css").read_text()
    unimportant = (STATIC / "quasar.unimportant.prod.css").read_text()
    fonts = (STATIC / "fonts.css").read_text()
    return _faces(fonts, base) + _brand(unimportant) + _palette(important) + STRUCTURE.format(s=SHELL)


def style(document_start: str) -> str | None:
    """The ``<style>`` of these rules for a page whose NiceGUI document start is ``document_start`` (None: not the
    start expected, no fonts.css import to find the static files by, or the files unreadable: the page is then
    sent in one piece, its stylesheets ahead of the rows)."""
    found = IMPORT.search(document_start)
    if found is None:
        return None
    try:
        return f"<style>{_css(found.group(1))}</style>"
    except OSError:
        log.warning("NiceGUI's static files could not be read: the workspace is not streamed", exc_info=True)
        return None
