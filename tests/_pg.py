"""PostgreSQL for the app's tests: one throw-away server per session, a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from _cctv import postgres_bindir, postgres_server

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL binaries not found; apt-get install postgresql")
    with postgres_server() as url:
        yield url


def fresh_database(server_url: str) -> str:
    """CREATE DATABASE on the server; its URL."""
    import psycopg

    name = f"t{next(_counter)}_{id(server_url) % 10_000}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def pg_url(pg_server: str) -> str:
    return fresh_database(pg_server)
