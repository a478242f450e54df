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
    client = aioredis.from_url(url, decode_responses=False)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        raise ConfigError(f"redis {redacted(url)}: cannot connect: {exc}") from None
    return client
