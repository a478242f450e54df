"""Stage 7, compress: the payload that is sent (docs/compression.md).

Runs when `compression` applies to the request (every request, or some models,
projects or keys): the steps named in config, to the context window of the
first deployment of the route less the tokens kept for the answer. The body
the client sent stays what receipts keep and hash (`ex.uncompressed`); the
compressed body is what goes upstream. A request answered from the cache is
not compressed.
"""

from __future__ import annotations

from aicp.compress.pipeline import compress, compress_sync
from aicp.compress.summarise import Summariser
from aicp.compress.tokens import TokenCounter
from aicp.memory.settings import CompressionSettings
from aicp.observability.events import EventBus
from aicp.plane.announce import emit_for
from aicp.plane.exchange import Exchange
from aicp.routing.router import Router

PROTOCOLS = ("openai", "anthropic")


class CompressStage:
    name = "compress"

    def __init__(
        self, settings: CompressionSettings, events: EventBus, router: Router | None = None
    ) -> None:
        self.settings = settings
        self.events = events
        self.router = router
        #: Summarising needs a model to do it through.
        self.summarise = "summarise" in settings.steps and bool(settings.summarise_with)
        self.steps = [s for s in settings.steps if s != "summarise" or self.summarise]
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
        budget = max(1, window - s.reserve_output_tokens)
        summariser = self._summariser(ex) if self.summarise else None
        if summariser is None:
            steps = [name for name in self.steps if name != "summarise"]
            result = compress_sync(
                ex.body,
                ex.protocol,
                model,
                steps=steps,
                budget_tokens=budget,
                min_block_chars=s.min_block_chars,
                counter=self.counter,
                counting="auto",
            )
        else:
            result = await compress(
                ex.body,
                ex.protocol,
                model,
                steps=self.steps,
                budget_tokens=budget,
                summarise=summariser.run,
                min_block_chars=s.min_block_chars,
                counter=self.counter,
                counting="auto",
            )
        record = result.receipt()
        if summariser is not None and summariser.used is not None:
            record["summarised_by"] = summariser.used
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

    def _summariser(self, ex: Exchange) -> Summariser | None:
        name = self.settings.summarise_with
        if self.router is None or not name:
            return None
        return Summariser.for_request(self.router, name, ex)
