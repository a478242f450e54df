"""The semantic cache in the gateway: embedder, index and guard (memory/semantic.py)
over the entries of the cache store (memory/cache.py).

The embedder is `local` (the `semantic` extra's shipped vectors, in process) or
a model the gateway serves embeddings for (`cache.semantic.embedder: <name>`),
called through its first deployment. A question is only sent to an external
embeddings deployment when its request may leave: not offline, and not
`confidential` or `restricted` (docs/caching.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aicp.memory.cache import CacheEntry
from aicp.memory.cache_key import SemanticRequest, semantic_request
from aicp.memory.settings import SemanticCacheSettings
from aicp.plane.exchange import Exchange
from aicp.providers.base import Call, Timeouts
from aicp.routing.router import Router

if TYPE_CHECKING:
    from aicp.memory.semantic import Evidence, SemanticCache

log = logging.getLogger("aicp.cache")


class SemanticLayer:
    def __init__(self, cache: SemanticCache, local: bool, settings: SemanticCacheSettings) -> None:
        self.cache = cache
        #: Whether the embedder runs in process or on a local deployment.
        self.local = local
        self.settings = settings

    @classmethod
    async def create(cls, settings: SemanticCacheSettings, router: Router) -> SemanticLayer:
        from aicp.memory.semantic import SemanticCache
        from aicp.memory.vectors import VectorIndex

        common = None
        if settings.embedder == "local":
            from aicp.memory.embed import WordLlamaEmbedder

            local = WordLlamaEmbedder()
            embedder: Any = local
            common = local.common_words()
            is_local = True
        else:
            from aicp.memory.embed import RouteEmbedder

            embed_texts, is_local = _route_embedder(settings.embedder, router)
            probe = await embed_texts(["how many dimensions"])
            embedder = RouteEmbedder(embed_texts, len(probe[0]))
        cache = SemanticCache(
            embedder,
            VectorIndex(embedder.dims),
            threshold=settings.threshold,
            thresholds=settings.thresholds,
            common_words=common,
        )
        return cls(cache, is_local, settings)

    def request(
        self, ex: Exchange, body: Mapping[str, Any] | None = None
    ) -> SemanticRequest | None:
        """The request's semantic side, of `body` when given (the body as it will be sent)."""
        if not self.local and not ex.may_leave:
            return None
        return semantic_request(
            ex.protocol, ex.operation, ex.model, ex.body if body is None else body
        )

    async def vector(self, req: SemanticRequest) -> Any:
        return (await self.cache.embed([req.text]))[0]

    def lookup(self, ex: Exchange, req: SemanticRequest, vector: Any, now: float) -> Evidence:
        # Any owner here: the recall stage checks the entry against `cache.isolation`.
        return self.cache.lookup(ex.model, req, vector, now=now, sensitivity=ex.sensitivity)

    def add(self, entry: CacheEntry, req: SemanticRequest, vector: Any) -> None:
        from aicp.memory.vectors import Scope

        self.cache.add(
            entry.id,
            entry.model,
            req,
            vector,
            sensitivity=entry.sensitivity,
            expires_at=entry.expires_at,
            scope=Scope(key=entry.key_id, user=entry.user_id, team=entry.team_id),
        )

    def indexed(self, entry: CacheEntry) -> None:
        """An entry read from the database (another process's, or before a restart)."""
        if entry.vector is None or entry.question is None:
            return
        import numpy as np

        vector = np.frombuffer(entry.vector, dtype=np.float32)
        if vector.shape[0] != self.cache.index.dims:
            return  # made by another embedder: of no use to this one
        self.add(entry, SemanticRequest(entry.question, entry.lookup), vector)

    def removed(self, entry: CacheEntry) -> None:
        self.cache.index.remove(entry.id)


def _route_embedder(name: str, router: Router) -> tuple[Any, bool]:
    route = router.resolve(name)
    if not route.chain:
        from aicp.errors import ConfigError

        raise ConfigError(f"cache.semantic.embedder: {name!r} has no deployment")
    dep = route.chain[0]
    timeouts = Timeouts(connect=5.0, first_byte=20.0, idle=20.0)

    async def embed_texts(texts: list[str]) -> list[list[float]]:
        call = Call(
            "openai", "embeddings", {"model": name, "input": texts}, dep.model, {}, timeouts
        )
        reply = await dep.provider.embed(call)
        rows = sorted(reply.data.get("data") or [], key=lambda d: d.get("index", 0))
        return [list(map(float, r["embedding"])) for r in rows]

    return embed_texts, bool(getattr(dep.provider, "local", False))
