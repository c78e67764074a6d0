"""REST broadcast: `POST /realtime/v1/api/broadcast` and `POST /realtime/v1/api/broadcast/{topic}/events/{event}`.

The batch form `{"messages":[{"topic","event","payload","private"?}]}` is what supabase-js falls back
to when a channel is not joined; the per-event form is realtime-py's `http_send` / supabase-js's
`httpSend`. Both need a valid `apikey` (header or query) and answer 202 with an empty body; every
subscriber of the (public) topic receives the message as a `broadcast` event.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localbase.context import context
from localbase.keys import TokenError
from localbase.realtime.hub import BroadcastMessage, Hub
from localbase.realtime.session import MAX_PAYLOAD_BYTES

MAX_MESSAGES = 100


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "message": message}, status_code=status)


def _check_key(request: Request) -> JSONResponse | None:
    ctx = context(request)
    key = request.headers.get("apikey") or request.query_params.get("apikey")
    if not key:
        return _error(401, "apikey is required")
    try:
        ctx.keys.verify(key)
    except TokenError as exc:
        return _error(401, f"invalid apikey: {exc}")
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        try:
            ctx.keys.verify(token.strip())
        except TokenError as exc:
            return _error(401, f"invalid token: {exc}")
    return None


async def _body(request: Request) -> bytes | JSONResponse:
    body = await request.body()
    if len(body) > context(request).max_body_bytes:
        return _error(413, "request body too large")
    return body


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.realtime.hub
    return hub


async def batch(request: Request) -> Response:
    if (denied := _check_key(request)) is not None:
        return denied
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return _error(400, "body must be JSON")
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        return _error(400, f'body must be {{"messages": [...]}} with 1 to {MAX_MESSAGES} messages')
    parsed: list[tuple[str, BroadcastMessage]] = []
    for message in messages:
        if not isinstance(message, dict):
            return _error(400, "each message must be an object")
        topic, event, payload = message.get("topic"), message.get("event"), message.get("payload", {})
        if not isinstance(topic, str) or not topic or not isinstance(event, str) or not event:
            return _error(400, "each message needs a topic and an event")
        if message.get("private"):
            return _error(400, "private channels are not supported by localbase")
        if len(json.dumps(payload)) > MAX_PAYLOAD_BYTES:
            return _error(413, f"payload too large: at most {MAX_PAYLOAD_BYTES} bytes")
        parsed.append((topic, BroadcastMessage(event, payload=payload)))
    hub = _hub(request)
    for topic, msg in parsed:
        hub.broadcast(f"realtime:{topic}", msg)
    return Response(status_code=202)


async def single(request: Request) -> Response:
    if (denied := _check_key(request)) is not None:
        return denied
    if request.query_params.get("private") == "true":
        return _error(400, "private channels are not supported by localbase")
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    topic = request.path_params["topic"]
    event = request.path_params["event"]
    message: BroadcastMessage
    if request.headers.get("content-type", "").startswith("application/octet-stream"):
        message = BroadcastMessage(event, binary=body)
    else:
        try:
            payload: Any = json.loads(body)
        except ValueError:
            return _error(400, "body must be JSON (or application/octet-stream)")
        message = BroadcastMessage(event, payload=payload)
    if len(body) > MAX_PAYLOAD_BYTES:
        return _error(413, f"payload too large: at most {MAX_PAYLOAD_BYTES} bytes")
    _hub(request).broadcast(f"realtime:{topic}", message)
    return Response(status_code=202)
