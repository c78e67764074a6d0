"""The app's thumbnails (supportchat_app.blobs.make_thumbnail) decode a file only with the decoder of the type its
uploader declared. Regression (review14, HIGH): an EPS file declared as image/png was opened by Pillow's EPS
plugin, which runs Ghostscript on it when the agent's app makes the thumbnail by itself (Ghostscript -dSAFER
bypasses run code on the agent's machine); TIFF, PSD and FITS decoders were reachable the same way.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import EpsImagePlugin, Image, UnidentifiedImageError

from supportchat_app.blobs import make_thumbnail
from sync.attachments import THUMBNAIL_FORMATS

EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 64 64
%%EndComments
newpath 0 0 moveto 64 64 lineto stroke
showpage
%%EOF
"""


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 60)).save(out, fmt)
    return out.getvalue()


@pytest.fixture
def no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ghostscript looks installed, and starting any program fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a thumbnail started a program: {args[0] if args else kwargs}")

    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs")
    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(subprocess, "check_call", refuse)


@pytest.mark.parametrize("mime", sorted(THUMBNAIL_FORMATS))
def test_eps_declared_as_an_image_gets_no_thumbnail_and_starts_nothing(
    mime: str, tmp_path: Path, no_subprocess: None
) -> None:
    source, target = tmp_path / "shot.png", tmp_path / "thumb.webp"
    source.write_bytes(EPS)
    with pytest.raises(UnidentifiedImageError):  # an OSError: the route answers 415 "cannot be shown"
        make_thumbnail(source, target, mime)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [source], "no half-written thumbnail"


@pytest.mark.parametrize(("fmt", "declared"), [("TIFF", "image/png"), ("PNG", "image/jpeg"), ("JPEG", "image/gif")])
def test_a_picture_of_another_format_than_declared_is_refused(fmt: str, declared: str, tmp_path: Path) -> None:
    source = tmp_path / "shot"
    source.write_bytes(_image(fmt))
    with pytest.raises(UnidentifiedImageError):
        make_thumbnail(source, tmp_path / "thumb.webp", declared)


@pytest.mark.parametrize("mime", sorted(THUMBNAIL_FORMATS))
def test_each_declared_type_is_thumbnailed_from_its_own_format(mime: str, tmp_path: Path, no_subprocess: None) -> None:
    source, target = tmp_path / "shot", tmp_path / "thumb.webp"
    source.write_bytes(_image(THUMBNAIL_FORMATS[mime]))
    make_thumbnail(source, target, mime)
    with Image.open(target) as thumb:
        assert (thumb.format, thumb.size) == ("WEBP", (64, 48))


def test_an_image_declaring_more_pixels_than_a_thumbnail_is_not_shown(tmp_path: Path) -> None:
    """Regression (review sec17b): the lightbox and "open" loaded ``/attachment/<id>`` inline, so a 25 MiB PNG
    declaring 100,000 x 100,000 pixels (its thumbnail was refused, its bytes were not) was the page's to decode:
    gigabytes of bitmap in the app's window. Such an image gets 415 there; ``?download=1`` still saves it."""
    from supportchat_app.blobs import MAX_THUMB_PIXELS, too_large_to_show
    from tests.test_images import png_declaring

    bomb, photo, pdf = tmp_path / "bomb", tmp_path / "photo", tmp_path / "pdf"
    bomb.write_bytes(png_declaring(100_000, 100_000))
    photo.write_bytes(_image("PNG"))
    pdf.write_bytes(png_declaring(100_000, 100_000))
    assert too_large_to_show(bomb, "image/png")
    assert not too_large_to_show(photo, "image/png")
    assert not too_large_to_show(pdf, "application/pdf")  # not an image the page decodes
    edge = tmp_path / "edge"
    edge.write_bytes(png_declaring(MAX_THUMB_PIXELS // 1000, 1000))
    assert not too_large_to_show(edge, "image/png")


def test_an_image_whose_size_cannot_be_read_is_not_shown(tmp_path: Path) -> None:
    """Regression (review17b): a GIF whose first frame lies past the size reader's walk (more than 1,024 blocks, then)
    was taken for its 1 x 1 screen and shown inline; a size not read to the end is too large to show."""
    from supportchat_app.blobs import too_large_to_show
    from tests.test_images import gif_behind_comments

    walked_past = tmp_path / "walked_past"
    walked_past.write_bytes(gif_behind_comments(70_000))
    assert too_large_to_show(walked_past, "image/gif")
