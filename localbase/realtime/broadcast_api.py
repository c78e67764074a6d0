"""REST broadcast: `POST /realtime/v1/api/broadcast` and `POST /realtime/v1/api/broadcast/{topic}/events/{event}`.

The batch form `{"messages":[{"topic","event","payload","private"?}]}` is what supabase-js falls back
to when a channel is not joined; the per-event form (`?private=true` for a private topic) is
realtime-py's `http_send` / supabase-js's `httpSend`. Both need a valid `apikey` (header or query)
and answer 202 with an empty body; every subscriber of the topic receives the message as a
`broadcast` event. A private message is sent only if the caller (the `Authorization` bearer token,
else the apikey) passes the INSERT policy for `broadcast` on `realtime.messages` for that topic, as
on Supabase: the batch form silently skips a topic it may not send to, the per-event form answers
403. Members of the private topic still receive it only if they may read it.

Messages count toward the stack's events per second (quotas.py), as Supabase counts them: over the
limit the per-event form and the batch form answer 429 "You have exceeded your rate limit", and a batch
that would take the rate past it 429 "Too many messages to broadcast, please reduce the batch size".

Bodies are limited while they stream in: a declared `Content-Length` over the limit is answered 413
before anything is read, and a body without one (chunked) is cut off with 413 the moment it passes
the limit, so a client cannot make the server buffer more than the limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from localbase.context import claims_of, context
from localbase.keys import TokenError
from localbase.realtime import authorization, quotas
from localbase.realtime.authorization import AuthorizationUnavailable
from localbase.realtime.hub import BroadcastMessage, Hub, hub_key
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


async def _body(request: Request, limit: int) -> bytes | JSONResponse:
    """The body, read only as far as `limit` allows (413 as soon as it is known to be larger)."""
    too_large = _error(413, f"request body too large: at most {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            return _error(400, "invalid Content-Length")
        if int(declared) > limit:
            return too_large
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            return too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _may_send(request: Request, sub_topic: str) -> bool:
    claims = claims_of(request)
    try:
        return await authorization.write(context(request).admin_pool, sub_topic, claims, "broadcast")
    except AuthorizationUnavailable:
        return False


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.realtime.hub
    return hub


def _over_rate(request: Request, batch: int | None = None) -> JSONResponse | None:
    """Supabase's `check_rate_limit` of the per-event form (`batch` None) or of a batch of that many messages;
    counts what may go."""
    events: quotas.RateCounter = request.app.state.realtime.quotas.events
    rate, limit = events.average(), events.limit
    if (rate >= limit) if batch is None else (rate > limit):
        return _error(429, quotas.REST_RATE_MESSAGE)
    if batch is not None and batch + rate > limit:
        return _error(429, quotas.REST_BATCH_MESSAGE)
    events.add(batch or 1)
    return None


async def batch(request: Request) -> Response:
    if (denied := _check_key(request)) is not None:
        return denied
    body = await _body(request, context(request).max_body_bytes)
    if isinstance(body, JSONResponse):
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return _error(400, "body must be JSON")
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        return _error(400, f'body must be {{"messages": [...]}} with 1 to {MAX_MESSAGES} messages')
    parsed: list[tuple[str, bool, BroadcastMessage]] = []
    for message in messages:
        if not isinstance(message, dict):
            return _error(400, "each message must be an object")
        topic, event, payload = message.get("topic"), message.get("event"), message.get("payload", {})
        if not isinstance(topic, str) or not topic or not isinstance(event, str) or not event:
            return _error(400, "each message needs a topic and an event")
        if len(json.dumps(payload)) > MAX_PAYLOAD_BYTES:
            return _error(413, f"payload too large: at most {MAX_PAYLOAD_BYTES} bytes")
        parsed.append((topic, message.get("private") is True, BroadcastMessage(event, payload=payload)))
    if (over := _over_rate(request, batch=len(parsed))) is not None:
        return over
    allowed: dict[str, bool] = {}
    for topic, private, _ in parsed:
        if private and topic not in allowed:
            allowed[topic] = await _may_send(request, topic)
    hub = _hub(request)
    for topic, private, msg in parsed:
        if private and not allowed[topic]:
            continue  # as Supabase: a private topic the caller may not send to is skipped
        hub.broadcast(hub_key(f"realtime:{topic}", private), msg)
    return Response(status_code=202)


async def single(request: Request) -> Response:
    if (denied := _check_key(request)) is not None:
        return denied
    body = await _body(request, MAX_PAYLOAD_BYTES)
    if isinstance(body, JSONResponse):
        return body
    topic = request.path_params["topic"]
    event = request.path_params["event"]
    private = request.query_params.get("private") == "true"
    message: BroadcastMessage
    if request.headers.get("content-type", "").startswith("application/octet-stream"):
        message = BroadcastMessage(event, binary=body)
    else:
        try:
            payload: Any = json.loads(body)
        except ValueError:
            return _error(400, "body must be JSON (or application/octet-stream)")
        message = BroadcastMessage(event, payload=payload)
    if private and not await _may_send(request, topic):
        return _error(403, "Unauthorized")
    if (over := _over_rate(request)) is not None:
        return over
    _hub(request).broadcast(hub_key(f"realtime:{topic}", private), message)
    return Response(status_code=202)
