"""Phoenix channel frames as Supabase Realtime speaks them, in both serializers.

vsn 1.0.0 (realtime-py, and the default when a client names no vsn) sends JSON objects
`{"topic","event","payload","ref","join_ref"}`; vsn 2.0.0 (supabase-js >= 2.91) sends JSON arrays
`[join_ref, ref, topic, event, payload]` and user broadcasts as binary frames:

    client -> server, kind 3: u8 3 | u8 join_ref_len | u8 ref_len | u8 topic_len | u8 event_len |
                              u8 meta_len | u8 enc (0 binary, 1 json) | join_ref | ref | topic | event | meta | payload
    server -> client, kind 4: u8 4 | u8 topic_len | u8 event_len | u8 meta_len | u8 enc | topic | event | meta | payload

Hand-written because no Python library speaks the Phoenix wire format; it is small and pure, so it is
unit-tested directly. Anything that does not parse raises `ProtocolError`; the socket answers it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

VSN_1 = "1.0.0"
VSN_2 = "2.0.0"
SUPPORTED_VSN = (VSN_1, VSN_2)
KIND_USER_BROADCAST_PUSH = 3
KIND_USER_BROADCAST = 4
ENC_BINARY = 0
ENC_JSON = 1


class ProtocolError(ValueError):
    """A frame that is not a valid Phoenix message for this connection's serializer."""


@dataclass
class Frame:
    """One Phoenix message. `binary_payload` is set for a v2 broadcast whose user payload is raw bytes."""

    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None = None
    join_ref: str | None = None
    binary_payload: bytes | None = field(default=None, repr=False)


def _opt_str(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ProtocolError(f"{what} must be a string or null")


def _frame(topic: Any, event: Any, payload: Any, ref: Any, join_ref: Any) -> Frame:
    if not isinstance(topic, str) or not topic:
        raise ProtocolError("topic must be a non-empty string")
    if not isinstance(event, str) or not event:
        raise ProtocolError("event must be a non-empty string")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ProtocolError("payload must be an object")
    return Frame(topic, event, payload, _opt_str(ref, "ref"), _opt_str(join_ref, "join_ref"))


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _loads(text: str, what: str) -> Any:
    """JSON text, refused when an escape in it names half a UTF-16 pair (``"\\ud800"``): valid JSON, but no
    Unicode text, so the frames it would be relayed in could not be written as UTF-8 and the fan-out to every
    other subscriber of the topic would fail on it."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"{what} is not JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ProtocolError(f"{what} holds a lone UTF-16 surrogate escape, which is not Unicode text") from None
    return data


def decode_text(vsn: str, text: str) -> Frame:
    """Parse a text frame in the connection's serializer."""
    data = _loads(text, "frame")
    if vsn == VSN_2:
        if not isinstance(data, list) or len(data) != 5:
            raise ProtocolError("a vsn 2.0.0 frame is an array [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = data
        return _frame(topic, event, payload, ref, join_ref)
    if not isinstance(data, dict):
        raise ProtocolError('a vsn 1.0.0 frame is an object {"topic","event","payload","ref"}')
    return _frame(data.get("topic"), data.get("event"), data.get("payload"), data.get("ref"), data.get("join_ref"))


def decode_binary(data: bytes) -> Frame:
    """Parse a v2 binary frame; only user broadcast pushes (kind 3) come from clients."""
    if len(data) < 7 or data[0] != KIND_USER_BROADCAST_PUSH:
        raise ProtocolError("unsupported binary frame (only kind 3, user broadcast push)")
    lens = data[1:6]
    enc = data[6]
    offset = 7
    parts: list[str] = []
    try:
        for length in lens:
            chunk = data[offset : offset + length]
            if len(chunk) != length:
                raise ProtocolError("binary frame is truncated")
            parts.append(chunk.decode("utf-8"))
            offset += length
    except UnicodeDecodeError:
        raise ProtocolError("binary frame header is not UTF-8") from None
    join_ref, ref, topic, event, meta_text = parts
    body = data[offset:]
    meta: dict[str, Any] = {}
    if meta_text:
        parsed_meta = _loads(meta_text, "binary frame metadata")
        if isinstance(parsed_meta, dict):
            meta = parsed_meta
    payload: dict[str, Any] = {"type": "broadcast", "event": event, **meta}
    binary: bytes | None = None
    if enc == ENC_JSON:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("binary frame payload is not JSON") from None
        payload["payload"] = _loads(text, "binary frame payload")
    elif enc == ENC_BINARY:
        binary = bytes(body)
    else:
        raise ProtocolError(f"unknown payload encoding {enc}")
    if not topic or not event:
        raise ProtocolError("binary frame needs a topic and an event")
    return Frame(topic, "broadcast", payload, ref or None, join_ref or None, binary)


def encode_text(vsn: str, frame: Frame) -> str:
    """Serialize a server message; v1 always carries `ref` (null for pushes), as realtime-py's models require."""
    if vsn == VSN_2:
        return json.dumps(
            [frame.join_ref, frame.ref, frame.topic, frame.event, frame.payload],
            separators=(",", ":"),
            ensure_ascii=False,
        )
    body: dict[str, Any] = {"topic": frame.topic, "event": frame.event, "payload": frame.payload, "ref": frame.ref}
    if frame.join_ref is not None:
        body["join_ref"] = frame.join_ref
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def encode_user_broadcast(
    topic: str, event: str, payload_bytes: bytes, *, json_encoded: bool, meta: dict[str, Any] | None = None
) -> bytes | None:
    """A v2 kind-4 frame, or None when a header field does not fit its one-byte length."""
    t, e = topic.encode(), event.encode()
    m = json.dumps(meta, separators=(",", ":")).encode() if meta else b""
    if max(len(t), len(e), len(m)) > 255:
        return None
    header = bytes([KIND_USER_BROADCAST, len(t), len(e), len(m), ENC_JSON if json_encoded else ENC_BINARY])
    return header + t + e + m + payload_bytes
