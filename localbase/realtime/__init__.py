"""/realtime/v1: Supabase Realtime's Phoenix protocol (placeholder until it lands)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from localbase.context import StackContext


class RealtimeService:
    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    @staticmethod
    def routes() -> list[BaseRoute]:
        return []
