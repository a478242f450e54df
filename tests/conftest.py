from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aicp.storage.db import Database
from aicp.storage.migrate import upgrade
from aicp.storage.redis import connect_redis
from aicp.testing import FakeUpstream, GatewayServer
from tests.backends import (
    POSTGRES_VAR,
    REDIS_VAR,
    Counters,
    flush_redis,
    fresh_postgres_database,
    service_url,
)
from tests.helpers import openai_settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs AICP_TEST_POSTGRES_URL")
    config.addinivalue_line("markers", "redis: needs AICP_TEST_REDIS_URL")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI tests: no AICP_URL or AICP_API_KEY from the environment, and a terminal wide
    enough that tables are not cut."""
    for name in ("AICP_URL", "AICP_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def module_upstream() -> Iterator[FakeUpstream]:
    """One fake upstream for a whole test module (with a module-scoped gateway)."""
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def gateway(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    with GatewayServer(openai_settings(upstream)) as gw:
        yield gw


# --- storage backends ----------------------------------------------------------
# A test that takes `database` (or `database_url`) runs once on SQLite and once on
# PostgreSQL; one that takes `counters` runs in process and on Redis. Without the
# servers (see tests/backends.py) the PostgreSQL and Redis cases skip, or fail
# under AICP_REQUIRE_SERVICES=1.


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database (not migrated): a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'aicp.db'}"
        return
    with fresh_postgres_database(service_url(POSTGRES_VAR, "PostgreSQL")) as url:
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database of its own for this test, on SQLite and on PostgreSQL."""
    db = Database(database_url)
    try:
        await upgrade(db)
        yield db
    finally:
        await db.aclose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, for tests that are about PostgreSQL only."""
    with fresh_postgres_database(service_url(POSTGRES_VAR, "PostgreSQL")) as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    """AICP_TEST_REDIS_URL, its database flushed."""
    url = service_url(REDIS_VAR, "Redis")
    flush_redis(url)
    return url


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[Counters]:
    """Shared counters in process (`.redis` is None) and in a flushed Redis."""
    if request.param == "memory":
        yield Counters("memory", None, None)
        return
    url = service_url(REDIS_VAR, "Redis")
    flush_redis(url)
    client = await connect_redis(url)
    try:
        yield Counters("redis", url, client)
    finally:
        if client is not None:
            await client.aclose()
