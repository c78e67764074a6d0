"""An object's content type: parsed strictly when it is uploaded, made harmless when it is served.

Hand-written because the check is the point: a lenient parser (python-multipart's
`parse_options_header`, `email.message`) accepts what a browser may read differently, e.g.
`image/png; a=,text/html` passed an `image/*` allowlist and was served back as is. An upload's type
is one `type/subtype` of RFC 7231 token characters, lower-cased, with at most a `charset` parameter;
anything else is refused with Supabase Storage's `invalid_mime_type` error, and only the normalized
type is stored.

Serving adds `X-Content-Type-Options: nosniff` to every object. HTML is served as `text/plain`, as
Supabase Storage does (its renderer turns any type containing `text/html` into `text/plain`);
XHTML likewise, and every type a browser would run as a document (HTML, XHTML, SVG, XML) also gets
`Content-Security-Policy: sandbox`, so that nothing runs with the storage origin. A stored type that
does not parse (a row written before this check) is served as `application/octet-stream`.
"""

from __future__ import annotations

import re

from localbase.storage import errors

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_CONTENT_TYPE = re.compile(
    rf"(?P<type>{_TOKEN})/(?P<subtype>{_TOKEN})"
    rf"(?:[ \t]*;[ \t]*(?P<name>{_TOKEN})=(?P<value>{_TOKEN}|\"{_TOKEN}\"))?[ \t]*"
)
OCTET_STREAM = "application/octet-stream"
# served as text/plain: Supabase Storage does so for text/html; XHTML is HTML too
_AS_TEXT = frozenset({"text/html", "application/xhtml+xml"})
# documents a browser runs scripts in when opened: sandboxed, so they never act as the storage origin; besides these,
# any `+xml` type (Chromium renders every one as an XML document, XHTML scripts included)
_ACTIVE = _AS_TEXT | frozenset({"image/svg+xml", "text/xml", "application/xml", "text/xsl", "application/xslt+xml"})
SANDBOX = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def parse(value: str) -> str | None:
    """`type/subtype` lower-cased, with `;charset=<value>` if given; None if `value` is anything else."""
    match = _CONTENT_TYPE.fullmatch(value)
    if match is None:
        return None
    base = f"{match['type']}/{match['subtype']}".lower()
    if match["name"] is None:
        return base
    if match["name"].lower() != "charset":
        return None
    charset = match["value"].strip('"')
    return f"{base};charset={charset}"


def normalize(value: str) -> str:
    """The upload's type as it is stored, or Supabase Storage's `invalid_mime_type` error."""
    parsed = parse(value)
    if parsed is None:
        raise errors.invalid_content_type()
    return parsed


def base_of(mimetype: str) -> str:
    """`type/subtype` of a normalized type."""
    return mimetype.split(";", 1)[0]


def served(stored: str) -> tuple[str, dict[str, str]]:
    """The Content-Type and the extra headers an object with stored type `stored` is served with."""
    parsed = parse(stored) or OCTET_STREAM
    headers = {"x-content-type-options": "nosniff"}
    base = base_of(parsed)
    if base in _ACTIVE or base.endswith("+xml"):
        headers["content-security-policy"] = SANDBOX
    if base in _AS_TEXT:
        charset = parsed[len(base) :]
        parsed = "text/plain" + charset
    return parsed, headers
