"""The image lightbox: a thread's images full size over the app (attachment_view.py opens it over every image
of the thread, at the one clicked), with zoom (buttons, + / - / 0 keys,
a click toggles fit and actual size), previous / next (buttons and the arrow keys) and Esc to close.

Images are loaded from the app's own guarded ``/attachment/<id>`` route (supportchat_app/blobs.py). Zoom
uses the CSS ``zoom`` property so a zoomed image grows the scroll area and can be panned by scrolling.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nicegui import events, ui

ZOOMS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


@dataclass(frozen=True)
class Picture:
    attachment_id: str
    name: str


class Lightbox(ui.dialog):
    """Opened at ``index`` of ``pictures``; deletes itself once closed. With ``save`` (the native window, which
    cannot download a link), Save is a button calling it with the picture shown."""

    def __init__(
        self, pictures: list[Picture], index: int = 0, save: Callable[[Picture], Awaitable[None]] | None = None
    ) -> None:
        super().__init__(value=False)
        self.pictures, self.index = pictures, max(0, min(index, len(pictures) - 1))
        self.zoom: float | None = None  # None: fit to the window
        self.props('maximized transition-duration=0 data-testid="lightbox"').mark("lightbox")
        with (
            self,
            ui.column().classes("w-full h-full gap-0 no-wrap text-white").style("background: #0b0d12"),
        ):
            with ui.row(align_items="center").classes("w-full px-4 py-2 gap-2 no-wrap"):
                self.title = (
                    ui.label().classes("text-base font-medium ellipsis grow").props('data-testid="lightbox-name"')
                )
                self.counter = ui.label().classes("text-sm opacity-70").props('data-testid="lightbox-counter"')
                self._tool("zoom_out", "Zoom out (-)", lambda: self._step_zoom(-1), "lightbox-zoom-out")
                self.zoom_label = ui.label().classes("text-sm w-12 text-center").props('data-testid="lightbox-zoom"')
                self._tool("zoom_in", "Zoom in (+)", lambda: self._step_zoom(1), "lightbox-zoom-in")
                self._tool("fit_screen", "Fit (0)", self._fit, "lightbox-fit")
                self.save: ui.link | None = None
                if save is not None:
                    self._tool("download", "Save", lambda: save(self.current), "lightbox-save")
                else:
                    self.save = ui.link(target="#").classes("text-white").props('data-testid="lightbox-save"')
                    with self.save:
                        ui.icon("download", size="22px").classes("p-2").tooltip("Save")
                self._tool("close", "Close (Esc)", self.close, "lightbox-close")
            with ui.row(wrap=False).classes("w-full grow no-wrap items-center gap-0 min-h-0"):
                self.previous = self._tool("chevron_left", "Previous (←)", lambda: self.go(-1), "lightbox-previous")
                self.stage = ui.element("div").classes("grow h-full overflow-auto flex min-w-0")
                with self.stage:
                    self.image = (
                        ui.element("img")
                        .classes("m-auto cursor-zoom-in select-none")
                        .props('data-testid="lightbox-image" draggable=false')
                        .mark("lightbox-image")
                    )
                    self.image.on("click", self._toggle)
                self.next = self._tool("chevron_right", "Next (→)", lambda: self.go(1), "lightbox-next")
            self.keys = ui.keyboard(on_key=self._key, active=False, ignore=[])
        self.on_value_change(self._opened_or_closed)
        self._show()
        self.open()

    def _tool(self, icon: str, tip: str, action: object, testid: str) -> ui.button:
        button = ui.button(icon=icon, on_click=action).props(  # type: ignore[arg-type]
            f'flat round color=white data-testid="{testid}"'
        )
        button.mark(testid).tooltip(tip)
        return button

    def _opened_or_closed(self, e: events.ValueChangeEventArguments[bool]) -> None:
        self.keys.active = bool(e.value)
        if not e.value:
            self.delete()

    @property
    def current(self) -> Picture:
        return self.pictures[self.index]

    def go(self, step: int) -> None:
        if len(self.pictures) > 1:
            self.index = (self.index + step) % len(self.pictures)
            self.zoom = None
            self._show()

    def _fit(self) -> None:
        self.zoom = None
        self._apply_zoom()

    def _toggle(self) -> None:
        self.zoom = 1.0 if self.zoom is None else None
        self._apply_zoom()

    def _step_zoom(self, step: int) -> None:
        current = self.zoom or 1.0
        if step > 0:
            self.zoom = next((z for z in ZOOMS if z > current), ZOOMS[-1])
        else:
            self.zoom = next((z for z in reversed(ZOOMS) if z < current), ZOOMS[0])
        self._apply_zoom()

    def _key(self, e: events.KeyEventArguments) -> None:
        if not e.action.keydown:
            return
        key = e.key.name
        if e.key.arrow_left:
            self.go(-1)
        elif e.key.arrow_right:
            self.go(1)
        elif key in ("+", "="):
            self._step_zoom(1)
        elif key == "-":
            self._step_zoom(-1)
        elif key == "0":
            self._fit()

    def _show(self) -> None:
        picture = self.current
        self.title.set_text(picture.name)
        self.counter.set_text(f"{self.index + 1} / {len(self.pictures)}")
        self.image.props["src"] = f"/attachment/{picture.attachment_id}"
        self.image.props["alt"] = picture.name
        if self.save is not None:
            self.save.props["href"] = f"/attachment/{picture.attachment_id}?download=1"
            self.save.props["download"] = picture.name
        several = len(self.pictures) > 1
        self.previous.set_visibility(several)
        self.next.set_visibility(several)
        self._apply_zoom()

    def _apply_zoom(self) -> None:
        if self.zoom is None:
            self.image.style(replace="max-width: 100%; max-height: 100%; object-fit: contain")
            self.image.classes(replace="m-auto cursor-zoom-in select-none")
            self.zoom_label.set_text("Fit")
        else:
            self.image.style(replace=f"max-width: none; max-height: none; zoom: {self.zoom}")
            self.image.classes(replace="m-auto cursor-zoom-out select-none")
            self.zoom_label.set_text(f"{self.zoom:.0%}")
