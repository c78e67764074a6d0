"""Routes of /rest/v1 (placeholder until the REST endpoints land)."""

from starlette.routing import Mount


def mount() -> Mount:
    return Mount("/rest/v1", routes=[])
