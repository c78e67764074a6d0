"""Routes of /auth/v1 (placeholder until the auth endpoints land)."""

from starlette.routing import Mount


def mount() -> Mount:
    return Mount("/auth/v1", routes=[])
