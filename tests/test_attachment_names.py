"""A file's name and type come from whoever sent it: the app must turn them into a download header and a file on
the agent's disk without breaking either (review sec17b).

- ``blobs.disposition``: a name with a control character (CR/LF included: only ``/`` is refused by the server's
  check) went into ``Content-Disposition`` as it was; uvicorn refuses such a header value ("Invalid HTTP header
  value"), so the file, and an image's lightbox, answered 500 instead of the file.
- ``native_files.typed_name``: the extension came from ``mimetypes.guess_extension`` of the type the server
  stored, which on Windows also reads the registry's types, so the one thing standing between a type like
  ``application/x-msdownload`` and ``os.startfile`` running an ``.exe`` was the bucket's allowlist; now only the
  bucket's own types get their extension (anything else ``.bin``), and a type with parameters
  (``text/plain; charset=utf-8``) is its base type (it opened as ``.bin``). Windows' reserved device names
  (``CON.pdf``, ``lpt1.txt``, ``AUX .txt``) named the console or a port instead of a file: the copy went nowhere.
  A colon stayed in the name: on Windows a name with another drive than the cache's (``D:x.pdf``) joined to the open
  folder is that drive's working folder (the copy was written, and opened, outside the app's folder), and
  ``a:b.pdf`` names drive A.
- ``staged.check``: a colleague's canned reply file reaches the agent's disk under its own name (the composer's
  staging folder). On Windows ``a.txt:b.pdf`` was written into a stream of ``a.txt`` that the folder's listing
  never shows, and ``CON.pdf`` to the console: the file silently missing from the message. Refused there with the
  reason, as any file the bucket would refuse.
"""

from __future__ import annotations

from pathlib import PureWindowsPath

import h11
import pytest

from supportchat_app import staged
from supportchat_app.blobs import disposition
from supportchat_app.components.native_files import typed_name
from sync.attachments import ALLOWED_MIME_TYPES

HOSTILE_NAMES = [
    "a\r\nX-Injected: 1.pdf",
    "tab\tand\x01control\x1b[0m.txt",
    "del\x7f.pdf",
    'quote" and back\\slash.pdf',
    "Grüße ☃ \u202efdp.exe",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("kind", ["inline", "attachment"])
def test_any_file_name_makes_a_header_the_server_sends(kind: str, name: str) -> None:
    value = disposition(kind, name)
    h11.Response(status_code=200, headers=[("Content-Disposition", value)])  # raises on what uvicorn refuses
    assert value.startswith(f'{kind}; filename="') and value.count('"') == 2
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def test_the_header_keeps_the_whole_name_for_the_browser() -> None:
    assert disposition("attachment", "a\r\nb.pdf").endswith("filename*=UTF-8''a%0D%0Ab.pdf")  # as sent, encoded
    assert disposition("inline", "Report 2026.pdf") == (
        "inline; filename=\"Report 2026.pdf\"; filename*=UTF-8''Report%202026.pdf"
    )


@pytest.mark.parametrize(
    ("mime", "expected"),
    [
        ("application/x-msdownload", "invoice.pdf.bin"),  # before (Windows): invoice.pdf.exe, started as a program
        ("application/javascript", "invoice.pdf.bin"),
        ("text/html", "invoice.pdf.bin"),
        ("image/svg+xml", "invoice.pdf.bin"),
        ("application/pdf", "invoice.pdf"),
        ("Application/PDF; name=x.exe", "invoice.pdf"),
    ],
)
def test_only_the_buckets_types_name_the_extension(mime: str, expected: str) -> None:
    assert typed_name("invoice.pdf", mime) == expected


def test_a_type_with_parameters_opens_as_its_base_type() -> None:
    assert typed_name("notes.txt", "text/plain; charset=utf-8") == "notes.txt"  # before: notes.txt.bin


def test_every_allowed_type_has_an_extension_of_its_own() -> None:
    names = {mime: typed_name("x", mime) for mime in ALLOWED_MIME_TYPES}
    assert not [name for name in names.values() if name.endswith(".bin")]
    assert names["image/jpeg"] == "file.jpg" and names["text/plain"] == "file.txt"


@pytest.mark.parametrize(
    ("name", "mime", "expected"),
    [
        ("CON.pdf", "application/pdf", "_CON.pdf"),
        ("lpt1.txt", "text/plain", "_lpt1.txt"),
        ("AUX .txt", "text/plain", "_AUX .txt"),
        ("nul.tar.zip", "application/zip", "_nul.tar.zip"),
        ("com9.report.pdf", "application/pdf", "_com9.report.pdf"),
        ("console.pdf", "application/pdf", "console.pdf"),
        ("com10.pdf", "application/pdf", "com10.pdf"),
    ],
)
def test_windows_device_names_become_file_names(name: str, mime: str, expected: str) -> None:
    assert typed_name(name, mime) == expected


@pytest.mark.parametrize("name", ["D:x.pdf", "C:x.pdf", "c:..x.pdf", "a:b.pdf", "::$DATA.pdf"])
def test_a_colon_never_leaves_the_folder_on_windows(name: str) -> None:
    typed = typed_name(name, "application/pdf")
    folder = PureWindowsPath("C:/Users/ann/cache/open/1")
    assert ":" not in typed and (folder / typed).parent == folder  # before: D:x.pdf, outside the folder


@pytest.mark.parametrize("name", ["a.txt:b.pdf", "CON.pdf", "lpt1.txt", "D:x.pdf"])
def test_a_name_windows_cannot_hold_is_refused_before_staging_there(name: str) -> None:
    reason = staged.check(name, 10, windows=True)
    assert reason is not None and ("Windows" in reason or "slashes" in reason)  # before: None, and the file lost


def test_such_names_stay_files_elsewhere() -> None:
    assert staged.check("a.txt:b.pdf", 10, windows=False) is None
    assert staged.check("CON.pdf", 10, windows=False) is None
    assert staged.check("report.pdf", 10, windows=True) is None
