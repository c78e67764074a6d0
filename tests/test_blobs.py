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
