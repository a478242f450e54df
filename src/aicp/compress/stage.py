"""Stage 7, compress: the payload that is sent (docs/compression.md).

Runs when `compression` applies to the request (every request, or some models,
projects or keys): the steps named in config, to the context window of the
first deployment of the route less the tokens kept for the answer. The body
the client sent stays what receipts keep and hash (`ex.uncompressed`); the
compressed body is what goes upstream. A request answered from the cache is
not compressed.
"""

from __future__ import annotations

from aicp.compress.pipeline import Compressed, compress, compress_sync
from aicp.compress.summarise import Summariser
from aicp.compress.tokens import TokenCounter, encoding_for_model
from aicp.memory.settings import CompressionSettings
from aicp.observability.events import EventBus
from aicp.plane.announce import emit_for
from aicp.plane.exchange import Exchange
from aicp.providers.base import Call, Timeouts
from aicp.routing.router import Router

PROTOCOLS = ("openai", "anthropic")
#: Ask the provider for its count when our estimate passes this share of the budget.
CALIBRATE_ABOVE = 0.8
COUNT_TIMEOUTS = Timeouts(connect=2.0, first_byte=5.0, idle=5.0)


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
        result = await self._run(ex, model, budget, summariser)
        calibrated = await self._calibrate(ex, model, budget, result)
        if calibrated is not None and calibrated[0] > calibrated[1] * 1.02:
            # We counted too few: work to the provider's count instead.
            result = await self._run(
                ex, model, round(budget * calibrated[1] / calibrated[0]), summariser
            )
        record = result.receipt()
        if calibrated is not None:
            record["provider_count"] = {"tokens": calibrated[0], "estimate": calibrated[1]}
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

    async def _run(
        self, ex: Exchange, model: str, budget: int, summariser: Summariser | None
    ) -> Compressed:
        s = self.settings
        if summariser is None:
            return compress_sync(
                ex.body,
                ex.protocol,
                model,
                steps=[name for name in self.steps if name != "summarise"],
                budget_tokens=max(1, budget),
                min_block_chars=s.min_block_chars,
                counter=self.counter,
                counting="auto",
            )
        return await compress(
            ex.body,
            ex.protocol,
            model,
            steps=self.steps,
            budget_tokens=max(1, budget),
            summarise=summariser.run,
            min_block_chars=s.min_block_chars,
            counter=self.counter,
            counting="auto",
        )

    async def _calibrate(
        self, ex: Exchange, model: str, budget: int, result: Compressed
    ) -> tuple[int, int] | None:
        """(the provider's count, our estimate) of the request as compressed, when our
        count is an estimate (not an OpenAI model) near the budget and the provider can
        count (Anthropic, Gemini, Bedrock, Vertex).

        The compressed request, not the client's: its count is the one `tokens_after`
        holds, while `tokens_before` of a trimmed request is in part a guess (the turns
        dropped are not tokenized), so only that pair measures our estimate."""
        route = ex.route
        if result.exact or route is None or not route.chain or encoding_for_model(model).native:
            return None
        estimate = result.tokens_after
        if estimate < CALIBRATE_ABOVE * budget:
            return None
        dep = route.chain[0]
        call = Call(ex.protocol, "count_tokens", result.body, dep.model, {}, COUNT_TIMEOUTS)
        try:
            counted = await dep.provider.count_tokens(call)
        except Exception:
            return None  # no count: the estimate stands
        if not counted or counted <= 0:
            return None
        return counted, estimate
