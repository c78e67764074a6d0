"""The localbase HTTP/WebSocket server: one Starlette app that mounts auth, REST and realtime.

`Stack` is the whole local Supabase: the embedded PostgreSQL, migrations, optional demo data and
the uvicorn server. `supportchat stack` runs it in the foreground; tests and the desktop app run it
as a child process (`python -m localbase`) so that stopping it is as real as stopping a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from localbase import gctune, migrate
from localbase.context import StackContext
from localbase.keys import Keys
from localbase.limits import Limits, LimitsMiddleware, protocol_for
from localbase.postgres import EmbeddedPostgres, free_port

log = logging.getLogger(__name__)


async def _health(request: Request) -> JSONResponse:
    ctx: StackContext = request.app.state.ctx
    async with ctx.admin_pool.connection() as conn:
        await conn.execute("select 1")
    return JSONResponse({"status": "ok"})


def create_app(
    keys: Keys,
    db_url: str,
    api_db_url: str,
    api_url: str,
    data_dir: Path | None = None,
    *,
    auth_db_url: str,
    limits: Limits | None = None,
) -> Starlette:
    """The ASGI app; pools and background services live for the app's lifespan.

    `db_url` is the superuser's, `api_db_url` the `authenticator`'s (REST), `auth_db_url`
    `supabase_auth_admin`'s (Auth), each the role the matching Supabase service connects as.
    Storage keeps its bytes under `data_dir/storage` (a temporary folder when no data dir is given).
    Every request passes `LimitsMiddleware` first (default limits when none are given).
    """
    limits = limits or Limits()
    from localbase.auth import routes as auth_routes
    from localbase.realtime import RealtimeService
    from localbase.rest import routes as rest_routes
    from localbase.storage import routes as storage_routes
    from localbase.storage import service as storage_service

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        admin_pool = AsyncConnectionPool(db_url, min_size=1, max_size=10, open=False, kwargs={"autocommit": True})
        api_pool = AsyncConnectionPool(api_db_url, min_size=2, max_size=20, open=False, kwargs={"autocommit": True})
        auth_pool = AsyncConnectionPool(auth_db_url, min_size=1, max_size=10, open=False, kwargs={"autocommit": True})
        await admin_pool.open(wait=True)
        await api_pool.open(wait=True)
        await auth_pool.open(wait=True)
        ctx = StackContext(
            keys, db_url, api_db_url, api_url, admin_pool, api_pool, auth_pool, max_body_bytes=limits.max_body_bytes
        )
        app.state.ctx = ctx
        scratch = tempfile.TemporaryDirectory(prefix="localbase-storage-") if data_dir is None else None
        storage = storage_service.attach(ctx, Path(scratch.name if scratch else str(data_dir)) / "storage")
        await storage.collect_orphans(admin_pool)
        realtime = RealtimeService(ctx)
        app.state.realtime = realtime
        await realtime.start()
        schema_listener = asyncio.create_task(rest_routes.schema_cache(ctx).listen(db_url))
        try:
            yield
        finally:
            schema_listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await schema_listener
            await realtime.stop()
            await auth_pool.close()
            await api_pool.close()
            await admin_pool.close()
            if scratch is not None:
                scratch.cleanup()

    from localbase.mail import Mailer

    mailer = Mailer.from_env()
    routes: list[BaseRoute] = [
        Route("/health", _health),
        auth_routes.mount(mailer),
        mailer.routes(lambda request: request.app.state.ctx.keys.service_role_key),
        rest_routes.mount(),
        storage_routes.mount(),
    ]
    routes.extend(RealtimeService.routes())
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(LimitsMiddleware, limits=limits)])


@dataclass
class Stack:
    """A complete local Supabase in `data_dir`; `api_port` serves HTTP, PostgreSQL gets its own port."""

    data_dir: Path
    api_port: int = 54321
    db_port: int | None = None
    demo: bool = False
    host: str = "127.0.0.1"
    postgres: EmbeddedPostgres = field(init=False)
    keys: Keys = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.api_port == 0:
            self.api_port = free_port(self.host)
        if self.db_port is None:
            self.db_port = free_port(self.host)
        self.postgres = EmbeddedPostgres(self.data_dir, self.db_port)
        self.keys = Keys.demo() if self.demo else Keys.for_data_dir(self.data_dir)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def api_db_url(self) -> str:
        return self.postgres.login_url("authenticator")

    @property
    def auth_db_url(self) -> str:
        return self.postgres.login_url("supabase_auth_admin")

    def info(self) -> dict[str, Any]:
        """What `supportchat stack` prints: `db_url` is the `postgres` role's, as a Supabase project's
        connection string (what `db migrate` takes); `superuser_db_url` is localbase's own superuser."""
        return {
            "api_url": self.api_url,
            "anon_key": self.keys.anon_key,
            "service_role_key": self.keys.service_role_key,
            "db_url": self.postgres.owner_url,
            "superuser_db_url": self.postgres.url,
            "jwt_secret": self.keys.jwt_secret,
        }

    def prepare(self) -> None:
        """Start PostgreSQL, give it Supabase's shape (sql/local, as the superuser), apply the migrations
        as the non-superuser `postgres`, seed the demo data once."""
        self.postgres.start()
        migrate.apply_local(self.postgres.url)
        self.postgres.set_login_passwords()
        migrate.apply_all(self.postgres.owner_url, bootstrap=False)
        if self.demo:
            from localbase import demo

            demo.seed(self.postgres.url)

    def serve(self, on_ready: Any = None) -> None:
        """Serve until SIGINT/SIGTERM, then stop uvicorn and PostgreSQL."""
        try:
            self._serve(on_ready)
        finally:
            # whatever went wrong above (a broken import, a taken port), PostgreSQL must not outlive us
            self.postgres.stop()

    def _serve(self, on_ready: Any) -> None:
        from localbase.realtime.coalesce import CoalescingWebSocketProtocol

        limits = Limits.from_env()
        app = create_app(
            self.keys,
            self.postgres.url,
            self.api_db_url,
            self.api_url,
            self.data_dir,
            auth_db_url=self.auth_db_url,
            limits=limits,
        )
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.api_port,
            log_level="warning",
            # uvicorn's websockets-sansio, writing each socket's frames once per loop tick (realtime/coalesce.py)
            ws=CoalescingWebSocketProtocol,
            http=protocol_for(limits),
            lifespan="on",
            ws_max_size=1_048_576,
            timeout_graceful_shutdown=3,
            # Supabase Realtime does not compress frames either; deflate costs ~10% of server CPU per frame
            ws_per_message_deflate=False,
            # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: any local client could then pick
            # its own address, and per-IP rate limits would key on a value the attacker chooses
            proxy_headers=False,
        )
        server = uvicorn.Server(config)

        async def main() -> None:
            serving = asyncio.create_task(server.serve())
            while not server.started:
                if serving.done():
                    await serving
                    return
                await asyncio.sleep(0.02)
            gctune.settle()  # start-up's objects out of the collector's reach (localbase/gctune.py)
            if on_ready is not None:
                on_ready()
            await serving

        # the event loop `uvicorn.run` would pick (its `loop="auto"`): uvloop where installed, else asyncio's. One loop
        # serves REST, auth, realtime's capture and every websocket, so its own overhead (epoll, transports, handles:
        # ~15 % of the stack's samples with 50 clients chatting) is paid on every request and frame
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(main())


DEMO_KEYS_WARNING = (
    "WARNING: --demo uses the Supabase CLI's well-known demo keys; these keys are public, so anyone who can"
    " reach this port can act as any user or as service_role. Use --demo only for throwaway data on this machine."
)


def run_foreground(data_dir: Path, port: int, demo: bool, as_json: bool, db_port: int | None = None) -> int:
    """`supportchat stack`: run until interrupted, printing the connection details when ready."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stack = Stack(data_dir, api_port=port, db_port=db_port, demo=demo)
    # SIGTERM behaves like Ctrl+C so uvicorn and PostgreSQL shut down through the same path
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        stack.prepare()
    except Exception:
        stack.postgres.stop()
        raise

    def ready() -> None:
        info = stack.info()
        if stack.keys.is_demo:
            print(DEMO_KEYS_WARNING, file=sys.stderr, flush=True)
        if as_json:
            print(json.dumps(info), flush=True)
        else:
            print("localbase is running.\n", flush=True)
            print(f"         API URL: {info['api_url']}")
            print(f"          DB URL: {info['db_url']}")
            print(f"Superuser DB URL: {info['superuser_db_url']}  (localbase only; Supabase has none for you)")
            print(f"      JWT secret: {info['jwt_secret']}")
            print(f"        anon key: {info['anon_key']}")
            print(f"service_role key: {info['service_role_key']}")
            if demo:
                from localbase import demo as demo_data

                print("\nDemo accounts (password for all: " + demo_data.PASSWORD + "):")
                for email, role, name in demo_data.ACCOUNTS:
                    print(f"  {role:<8} {email:<28} {name}")
            print("\nPress Ctrl+C to stop.", flush=True)

    try:
        stack.serve(on_ready=ready)
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    return 0
