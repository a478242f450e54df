"""The optional Redis connection (shared counters, cache invalidation)."""

from __future__ import annotations

from typing import Any


async def connect_redis(url: str | None) -> Any:
    """A redis.asyncio client for `url`, or None when no Redis is configured."""
    if not url:
        return None
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, decode_responses=False)
    await client.ping()
    return client
