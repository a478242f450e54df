"""Stage 7, compress: the payload that is sent (docs/compression.md).

Runs when `compression` applies to the request (every request, or some models,
projects or keys): the steps named in config, to the context window of the
first deployment of the route less the tokens kept for the answer. The body
the client sent stays what receipts keep and hash (`ex.uncompressed`); the
compressed body is what goes upstream. A request answered from the cache is
not compressed.
"""

from __future__ import annotations

from aicp.compress.pipeline import compress_sync
from aicp.compress.tokens import TokenCounter
from aicp.memory.settings import CompressionSettings
from aicp.observability.events import EventBus
from aicp.plane.announce import emit_for
from aicp.plane.exchange import Exchange

PROTOCOLS = ("openai", "anthropic")


class CompressStage:
    name = "compress"

    def __init__(self, settings: CompressionSettings, events: EventBus) -> None:
        self.settings = settings
        self.events = events
        self.steps = [s for s in settings.steps if s != "summarise"]
        self.counter = TokenCounter()

    async def __call__(self, ex: Exchange) -> None:
        s = self.settings
        p = ex.principal
        if ex.operation != "chat" or ex.cached is not None or ex.protocol not in PROTOCOLS:
            return
        if not s.applies(ex.model, p.project_id, p.key_id):
            return
        route = ex.route
        model = route.chain[0].model if route is not None and route.chain else ex.model
        window = s.context_tokens.get(model, s.default_context_tokens)
        result = compress_sync(
            ex.body,
            ex.protocol,
            model,
            steps=self.steps,
            budget_tokens=max(1, window - s.reserve_output_tokens),
            min_block_chars=s.min_block_chars,
            counter=self.counter,
            counting="auto",
        )
        record = result.receipt()
        ex.trace.append(("compress", record))
        if not result.changed:
            return
        ex.uncompressed = ex.body
        ex.body = result.body
        if self.events.wants("compression.applied"):
            data = {
                "tokens_before": result.tokens_before,
                "tokens_after": result.tokens_after,
                "steps": [a.name for a in result.steps_applied],
            }
            emit_for(self.events, "compression.applied", ex, data)
