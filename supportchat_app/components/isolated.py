"""``Isolated``: part of a page whose changes re-render only that part in the browser.

NiceGUI's page is one Vue render function over every element (``renderRecursively``): plain elements (``div``)
are rendered inside the nearest enclosing Vue *component*'s render, so a change to any of them (a new bubble in
the thread) re-renders everything up to that component, which for the workspace is most of the page (header,
inbox, composer, every bubble), and Vue then walks all of it. This element is a component of its own whose
children are rendered in its render: a change among them stops here. It is a ``display: contents`` box, so the
layout is as if its children were its parent's. What changes the isolated part's own element list (adding a child
directly to the ``Isolated``) still reaches the parent: isolate one level above what grows.

The other direction too: NiceGUI gives each component its children as fresh slot functions, so Vue renders a child
component again whenever its parent renders. The ``Isolated`` keeps its children's vnodes in a Vue ``computed`` over
what they read and hands back the same ones, marked as ``v-memo`` marks its cache, while nothing of that changed, so
a render of the page around it skips its whole subtree. The thread puts each live bubble in one of its own: a new
bubble then costs one cheap wrapper per earlier bubble instead of re-rendering every bubble's elements.
"""

from __future__ import annotations

from nicegui import ui


class Isolated(ui.element, component="isolated.js"):
    pass
