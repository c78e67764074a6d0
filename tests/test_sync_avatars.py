"""The pure part of avatars (sync/avatars.py): the picture check by content (not by name), the object key
named after the content, and which avatar_url values a device will ever fetch or show (only a picture in
that user's own folder: never another user's, never another bucket, never a path that climbs out)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sync.avatars import MAX_BYTES, AvatarFiles, Picture, checked, key_of, object_key, sniff, url_of
from tests.test_images import gif_behind_comments, png_declaring

ME = str(uuid.uuid4())
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG, ("image/png", "png")),
        (b"\xff\xd8\xff\xe0" + b"\0" * 8, ("image/jpeg", "jpg")),
        (b"GIF89a" + b"\0" * 8, ("image/gif", "gif")),
        (b"RIFF\0\0\0\0WEBPVP8 ", ("image/webp", "webp")),
        (b"<svg onload=alert(1)>", None),
        (b"%PDF-1.4", None),
        (b"", None),
    ],
)
def test_sniff(data: bytes, expected: tuple[str, str] | None) -> None:
    assert sniff(data) == expected


def test_checked_refuses_with_a_sentence(tmp_path: Path) -> None:
    empty, big, svg, good = (tmp_path / n for n in ("empty.png", "big.png", "evil.png", "me.txt"))
    empty.write_bytes(b"")
    big.write_bytes(PNG + b"\0" * MAX_BYTES)
    svg.write_bytes(b"<svg onload=alert(1)>")  # named .png, is not one
    good.write_bytes(PNG)  # named .txt, is a PNG
    for path, why in (
        (empty, "empty"),
        (big, "at most 1 MB"),
        (svg, "PNG, JPEG, WebP or GIF"),
        (tmp_path / "missing.png", "cannot be read"),
    ):
        with pytest.raises(ValueError, match=why):
            checked(path)
    assert checked(good) == Picture(PNG, "image/png", "png")


def test_the_key_is_named_after_the_content() -> None:
    a, b = Picture(PNG, "image/png", "png"), Picture(PNG + b"x", "image/png", "png")
    assert object_key(ME, a) == object_key(ME, a) != object_key(ME, b)
    assert object_key(ME, a).startswith(f"{ME}/avatar-") and key_of(ME, url_of(object_key(ME, a))) == object_key(ME, a)


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        f"avatars/{uuid.uuid4()}/avatar.png",
        f"avatars/{ME}/../x/avatar.png",
        f"avatars/{ME}/",
        f"avatars/{ME}/.hidden",
        f"attachments/{ME}/a.png",
        "https://tracker.example/pixel.png",
        f"avatars/{ME}/a/b.png",
        f"avatars/{ME}/x.html",
        f"avatars/{ME}/x.svg",
        f"avatars/{ME}/x.png.html",
        f"avatars/{ME}/avatar",
    ],
)
def test_only_a_picture_in_the_users_own_folder_is_ever_fetched(url: str | None) -> None:
    assert key_of(ME, url) is None


async def test_refresh_keeps_only_named_pictures(tmp_path: Path) -> None:
    files = AvatarFiles(tmp_path)
    kept = files.keep(f"{ME}/avatar-old.png", PNG)
    other = str(uuid.uuid4())
    files.keep(f"{other}/avatar-1.png", PNG)

    class Remote:
        async def download_file(self, bucket: str, key: str, dest: Path) -> int:
            dest.write_bytes(PNG)
            return len(PNG)

    arrived = await files.refresh(lambda: {ME: f"avatars/{ME}/avatar-new.png"}, Remote())  # type: ignore[arg-type]
    assert arrived == {ME, other}, "the new picture arrived, the unnamed one went"
    assert not kept.exists() and files.path(ME, f"avatars/{ME}/avatar-new.png") is not None
    assert not (tmp_path / other).exists(), "a picture no visible profile names any more is dropped"


def test_a_picture_name_has_a_picture_extension() -> None:
    for name in ("a.png", "a.jpg", "a.JPEG", "a.gif", "a.webp"):
        assert key_of(ME, f"avatars/{ME}/{name}") == f"{ME}/{name}"


async def test_a_download_that_is_not_a_picture_is_dropped_and_not_fetched_again(tmp_path: Path) -> None:
    files = AvatarFiles(tmp_path)
    liar, honest = str(uuid.uuid4()), str(uuid.uuid4())
    fetched: list[str] = []

    class Remote:
        async def download_file(self, bucket: str, key: str, dest: Path) -> int:
            fetched.append(key)
            data = b"<!doctype html><script>fetch('/')</script>" if key.startswith(liar) else PNG
            dest.write_bytes(data)
            return len(data)

    urls = {liar: f"avatars/{liar}/x.png", honest: f"avatars/{honest}/avatar-1.png"}
    arrived = await files.refresh(lambda: urls, Remote())  # type: ignore[arg-type]
    assert arrived == {honest}, "only the real picture arrived"
    assert files.path(liar, urls[liar]) is None and not (tmp_path / liar / "x.png").exists(), "the page was dropped"
    assert files.path(honest, urls[honest]) is not None and (tmp_path / honest / "avatar-1.png").read_bytes() == PNG
    await files.refresh(lambda: urls, Remote())  # type: ignore[arg-type]
    assert fetched == [f"{liar}/x.png", f"{honest}/avatar-1.png"], "a refused key is not downloaded again"


def test_checked_refuses_a_picture_that_declares_too_many_pixels(tmp_path: Path) -> None:
    """A 1 MiB PNG may declare 16,000 x 16,000 pixels (a decompression bomb): refused before it is sent."""
    bomb, wide = tmp_path / "bomb.png", tmp_path / "wide.png"
    bomb.write_bytes(png_declaring(16_000, 16_000))
    wide.write_bytes(png_declaring(4096, 300))
    with pytest.raises(ValueError, match="16000 x 16000 pixels; a picture may be at most 4096 x 4096"):
        checked(bomb)
    assert checked(wide).mime == "image/png"


def test_checked_refuses_a_picture_whose_size_cannot_be_read(tmp_path: Path) -> None:
    """Regression (review17b): a GIF's 60,000 x 60,000 frame behind more than 1,024 comment blocks was read as its
    1 x 1 screen and sent. Behind more blocks than the reader walks, its size is unknown: the user is told so, not
    shown a size it does not have; behind fewer, its frame's size is found and refused."""
    path = tmp_path / "many.gif"
    path.write_bytes(gif_behind_comments(70_000))  # 210 KB
    with pytest.raises(ValueError, match="size cannot be read"):
        checked(path)
    path.write_bytes(gif_behind_comments(1100))
    with pytest.raises(ValueError, match="60000 x 60000 pixels"):
        checked(path)


async def test_a_download_that_declares_too_many_pixels_is_dropped_and_not_fetched_again(tmp_path: Path) -> None:
    """Regression (review sec17b): a customer's avatar was checked by its signature only, so a PNG declaring
    16,000 x 16,000 pixels reached every agent's inbox rows, 1 GB of bitmap for the page to decode per picture."""
    files = AvatarFiles(tmp_path)
    bomber = str(uuid.uuid4())
    fetched: list[str] = []

    class Remote:
        async def download_file(self, bucket: str, key: str, dest: Path) -> int:
            fetched.append(key)
            dest.write_bytes(png_declaring(16_000, 16_000))
            return dest.stat().st_size

    urls = {bomber: f"avatars/{bomber}/avatar-1.png"}
    assert await files.refresh(lambda: urls, Remote()) == set()  # type: ignore[arg-type]
    assert files.path(bomber, urls[bomber]) is None and not (tmp_path / bomber / "avatar-1.png").exists()
    await files.refresh(lambda: urls, Remote())  # type: ignore[arg-type]
    assert fetched == [f"{bomber}/avatar-1.png"], "a refused key is not downloaded again"
