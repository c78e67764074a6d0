"""/realtime/v1: Supabase Realtime's Phoenix channel protocol for the official clients.

Modules, from the wire inwards:
  protocol.py       frames in both serializers (vsn 1.0.0 JSON objects, vsn 2.0.0 arrays + binary broadcasts)
  session.py        one websocket: join/leave, heartbeat, broadcast, presence, access_token, limits
  hub.py            channels by topic, bounded per-socket send queues, broadcast and presence fan-out
  coalesce.py       uvicorn's websocket protocol writing each socket's frames once per loop tick (one send call),
                    and SEND_MANY: a socket's queued frames handed over in one ASGI-extension call
  presence.py       presence state and diffs
  filters.py        postgres_changes bindings, binding ids and row filters
  subscriptions.py  bindings checked against the publication and typed by PostgreSQL at join
  capture.py        logical decoding (pgoutput) of committed changes, typed, matched and delivered
  matching.py       which channels a change goes to: per table and event a plan kept while the channels stay
  walstream.py      the slot streamed over the replication protocol (woken at commit, no polling)
  pgoutput.py       the pgoutput message parser
  values.py         text values to the JSON `to_jsonb` gives, for common types (others: PostgreSQL casts them)
  rls.py            batched per-subscriber RLS checks, as Supabase's walrus does them
  authorization.py  private channels: RLS on realtime.messages decides who reads, sends and tracks
  db_broadcast.py   Broadcast from Database: realtime.send() rows delivered to their channels
  broadcast_api.py  REST broadcast endpoints

  quotas.py         Supabase Realtime's tenant quotas (users, joins/s, channels per socket, events/s, presence),
                    sends and deliveries counted as Supabase counts them (postgres_changes on their own counter)

Settings: LOCALBASE_REALTIME_PRIVATE_ONLY=1 refuses public channels (Supabase's "Allow public access"
switched off): joins need `config.private: true`, REST broadcasts need `private: true`. The quotas'
settings (LOCALBASE_REALTIME_MAX_*, with Supabase's defaults) are listed in quotas.py.

`RealtimeService(ctx)` is created by the server's lifespan; `start()` launches the capture,
`stop()` ends it (its temporary replication slot goes with its connection) and the broadcast listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from localbase.context import StackContext
from localbase.keys import TokenError
from localbase.realtime import broadcast_api
from localbase.realtime.capture import Capture
from localbase.realtime.db_broadcast import DatabaseBroadcasts
from localbase.realtime.hub import Hub
from localbase.realtime.protocol import SUPPORTED_VSN, VSN_1
from localbase.realtime.quotas import Quotas, QuotaSettings
from localbase.realtime.session import Session

log = logging.getLogger(__name__)


class RealtimeService:
    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx
        self.quotas = Quotas(QuotaSettings.from_env())
        self.hub = Hub(self.quotas)  # what the hub and the capture deliver counts toward the quotas, as on Supabase
        self.capture = Capture(ctx.db_url, self.hub)
        self.db_broadcasts = DatabaseBroadcasts(ctx.db_url, ctx.admin_pool, self.hub)
        self.private_only = os.environ.get("LOCALBASE_REALTIME_PRIVATE_ONLY", "") in ("1", "true")
        self._tasks: list[asyncio.Task[None]] = []
        self.sessions: set[Session] = set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.capture.run(), name="realtime-capture"),
            asyncio.create_task(self.db_broadcasts.run(), name="realtime-db-broadcasts"),
        ]

    async def stop(self) -> None:
        for session in list(self.sessions):
            session.outbox.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def serve(self, ws: WebSocket) -> None:
        """One websocket: check the apikey and vsn, then run the Phoenix session until either side leaves."""
        apikey = ws.query_params.get("apikey") or ws.headers.get("apikey") or ""
        vsn = ws.query_params.get("vsn") or VSN_1
        try:
            self.ctx.keys.verify(apikey)
        except TokenError:
            await ws.close(code=1008)  # before accept: the handshake is refused with 403
            return
        if vsn not in SUPPORTED_VSN:
            await ws.close(code=1008)
            return
        refused = self.quotas.refuse_socket()
        if refused is not None:  # Supabase's UserSocket answers the handshake itself: 429 and why
            await self._deny(ws, refused)
            return
        await ws.accept()
        session = Session(
            ws,
            vsn,
            keys=self.ctx.keys,
            hub=self.hub,
            pool=self.ctx.admin_pool,
            apikey=apikey,
            private_only=self.private_only,
            limits=self.quotas,
        )
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)

    @staticmethod
    async def _deny(ws: WebSocket, reason: str) -> None:
        try:
            await ws.send_denial_response(JSONResponse({"error": reason}, status_code=429))
        except RuntimeError:  # a server without the denial-response extension: a plain refusal (403)
            await ws.close(code=1008)

    @staticmethod
    def routes() -> list[BaseRoute]:
        async def websocket(ws: WebSocket) -> None:
            service: RealtimeService = ws.app.state.realtime
            await service.serve(ws)

        return [
            WebSocketRoute("/realtime/v1/websocket", websocket),
            Route("/realtime/v1/api/broadcast", broadcast_api.batch, methods=["POST"]),
            Route("/realtime/v1/api/broadcast/{topic}/events/{event}", broadcast_api.single, methods=["POST"]),
        ]
