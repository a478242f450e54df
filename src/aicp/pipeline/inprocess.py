"""The gateway as stages of a pipeline running inside it see it: the real request path,
in process, as the key that started the run.

A stage runs in a worker thread; its calls go to the gateway's event loop and
through the endpoint handler (api/inprocess.py), so keys, policy, budgets,
guardrails and receipts apply exactly as to a client, and every call leaves a
receipt labelled with the run and stage. No key secret is kept anywhere: the
run remembers its key's id, and a revoked key stops its runs' calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from aicp.api.inprocess import Caller, Captured, committed_receipt, invoke
from aicp.pipeline.gateway import GatewayUnavailable, chat_reply, embed_reply, gateway_error
from aicp.pipeline.model import EmbedReply, LlmReply
from aicp.storage.schema import MICROS

if TYPE_CHECKING:
    from aicp.state import AppState

T = TypeVar("T")


class GatewayLlm:
    """`model.Llm` for one stage of one run."""

    def __init__(
        self,
        state: AppState,
        loop: asyncio.AbstractEventLoop,
        key_id: str | None,
        labels: dict[str, str],
        timeout_s: float = 600.0,
    ) -> None:
        self.state = state
        self.loop = loop
        self.caller = Caller(labels=labels, on_behalf_of=key_id or "")
        self.timeout_s = timeout_s

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> LlmReply:
        body = {**params, "model": model, "messages": messages, "stream": False}
        got, data, cost = self._run(self._call("chat", body))
        return chat_reply(data, got.status, got.receipt_id, cost, model)

    def embed(self, model: str, inputs: list[str]) -> EmbedReply:
        got, data, cost = self._run(self._call("embeddings", {"model": model, "input": inputs}))
        return embed_reply(data, got.status, got.receipt_id, cost)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(self.timeout_s)
        except TimeoutError:
            future.cancel()
            raise GatewayUnavailable(f"no answer within {self.timeout_s:g} s") from None

    async def _call(
        self, operation: str, body: dict[str, Any]
    ) -> tuple[Captured, dict[str, Any], float]:
        got = await invoke(self.state, "openai", operation, orjson.dumps(body), {}, self.caller)
        try:
            data = orjson.loads(got.content)
        except orjson.JSONDecodeError:
            data = {}
        if got.status >= 400:
            raise gateway_error(got.status, data)
        cost = 0.0
        if got.receipt_id is not None:
            receipt = await committed_receipt(self.state, got.receipt_id)
            cost = (receipt.get("cost_micros") or 0) / MICROS
        return got, data if isinstance(data, dict) else {}, cost
