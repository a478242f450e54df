"""RPM and TPM limits per key, user, team and deployment (stub)."""

from __future__ import annotations

from typing import Any

from aicp.plane.exchange import Exchange


class RateLimiter:
    def __init__(self, redis: Any) -> None:
        self.redis = redis


class LimitsStage:
    name = "limits"

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def __call__(self, ex: Exchange) -> None:
        return None


class MeterStage:
    """Response stage: corrects token counts with the actual usage."""

    name = "meter"

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def __call__(self, ex: Exchange) -> None:
        return None
