"""Helpers for the REST tests: official supabase-py clients acting as one user each (no tests here).

Each client gets its own httpx.Client, closed at teardown: supabase-py never closes the REST
client it creates itself, which would leak sockets (a ResourceWarning, an error under pytest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from supabase import Client, ClientOptions, create_client

from tests.stackproc import StackProcess

ClientFactory = Callable[[str | None], Client]


def open_client(stack: StackProcess, token: str | None, opened: list[httpx.Client]) -> Client:
    """A client with the anon key whose REST calls carry `token` (anon when None)."""
    http = httpx.Client(timeout=60)
    opened.append(http)
    client = create_client(
        stack.api_url, stack.anon_key, ClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=http)
    )
    if token is not None:
        client.postgrest.auth(token)
    return client


def _clients(stack: StackProcess) -> Iterator[ClientFactory]:
    opened: list[httpx.Client] = []
    yield lambda token: open_client(stack, token, opened)
    for http in opened:
        http.close()


# a test module binds this under any name (`uses_clients = clients_fixture`) and asks for `clients`
clients_fixture = pytest.fixture(scope="module", name="clients")(_clients)
