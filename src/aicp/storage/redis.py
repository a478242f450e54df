"""The optional Redis connection (shared counters, cache invalidation).

Redis is imported only when a URL is configured, so the embedded default never
needs the package (`pip install 'aicp[team]'` brings it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aicp.errors import ConfigError
from aicp.storage.db import redacted

if TYPE_CHECKING:
    from redis.asyncio import Redis


async def connect_redis(url: str | None) -> Redis | None:
    """A redis.asyncio client for `url` that has answered a PING, or None without a URL."""
    if not url:
        return None
    try:
        import redis.asyncio as aioredis
    except ModuleNotFoundError:
        raise ConfigError(
            "AICP_REDIS_URL is set but the redis package is not installed "
            "(`pip install 'aicp[team]'`)"
        ) from None
    # A blocking pool: under a burst, commands wait for a connection instead of
    # failing with "Too many connections" (redis-py's default pool fails fast).
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=200, timeout=10)
    client = aioredis.Redis(connection_pool=pool, decode_responses=False)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        raise ConfigError(f"redis {redacted(url)}: cannot connect: {exc}") from None
    return client
