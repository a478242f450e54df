"""The servers the backend-parametrised tests run against, and how to get them.

PostgreSQL and Redis come from the environment (`.ci/services.sh` starts both
and prints the variables):

    AICP_TEST_POSTGRES_URL  a server where the tests may create and drop databases
    AICP_TEST_REDIS_URL     a Redis database the tests may flush
    AICP_REQUIRE_SERVICES=1 a missing server fails the test instead of skipping it (CI)
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

POSTGRES_VAR = "AICP_TEST_POSTGRES_URL"
REDIS_VAR = "AICP_TEST_REDIS_URL"
REQUIRE_VAR = "AICP_REQUIRE_SERVICES"

HINT = 'start both with `eval "$(.ci/services.sh)"`'

T = TypeVar("T")


def service_url(var: str, what: str) -> str:
    """The URL in `var`; else skip the test, or fail it when services are required."""
    url = os.environ.get(var)
    if url:
        return url
    if os.environ.get(REQUIRE_VAR) == "1":
        message = f"{REQUIRE_VAR}=1 but {var} is not set: {what} is required; {HINT}"
        pytest.fail(message, pytrace=False)
    pytest.skip(f"{what} tests need {var} ({HINT}; {REQUIRE_VAR}=1 makes this a failure)")


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server, dropped afterwards: its URL."""
    name = f"aicp_test_{uuid.uuid4().hex[:16]}"
    _run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a test that failed half-way may have left a connection open.
        _run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def flush_redis(url: str) -> None:
    async def flush() -> None:
        client = Redis.from_url(url)
        try:
            await client.flushdb()
        finally:
            await client.aclose()

    _run(flush())


@dataclass(frozen=True, slots=True)
class Counters:
    """Where shared counters live: in process (`redis` is None) or in Redis."""

    name: str
    url: str | None
    redis: Redis | None


async def _admin(server_url: str, statement: str) -> None:
    import asyncpg

    dsn = make_url(server_url).set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to the end on its own loop in its own thread.

    Fixtures call this from sync and async code alike; a thread keeps it clear of
    whatever event loop the test itself is running.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="aicp-test-admin")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
