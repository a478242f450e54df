"""The built-in `mock` provider: deterministic replies with no network.

It answers `make run` out of the box and serves users' own tests. Options
(`providers.<name>.options` in aicp.yaml):

    latency_ms: 0         delay before the answer (or first chunk)
    chunk_delay_ms: 0     delay between stream chunks
    chunks: 0             split the reply into this many chunks (0: one per word)
    failure_rate: 0.0     fraction of calls that fail with `failure_status`
    failure_status: 500
    seed: 0               seeds the failure draw, so runs repeat exactly
    reply: null           fixed reply text instead of the echo
    embedding_dim: 16
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aicp.errors import UpstreamStatusError
from aicp.protocol.jsonutil import Json, dumps
from aicp.protocol.tokens import estimate_request_tokens, estimate_tokens
from aicp.providers.base import OPENAI, Call, Reply, Usage

if TYPE_CHECKING:
    from aicp.config import ProviderSettings
    from aicp.providers.http import HttpClient

DEFAULT_MODELS = ["mock-1", "mock-embed"]


def last_user_text(body: Json) -> str:
    for message in reversed(body.get("messages") or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(
                str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
            )
    return ""


class MockProvider:
    native = OPENAI
    local = True

    def __init__(self, name: str, settings: ProviderSettings, http: HttpClient | None) -> None:
        self.name = name
        self.settings = settings
        opts = settings.options
        self.latency = float(opts.get("latency_ms", 0)) / 1000
        self.chunk_delay = float(opts.get("chunk_delay_ms", 0)) / 1000
        self.chunks = int(opts.get("chunks", 0))
        self.failure_rate = float(opts.get("failure_rate", 0.0))
        self.failure_status = int(opts.get("failure_status", 500))
        self.fixed_reply = opts.get("reply")
        self.embedding_dim = int(opts.get("embedding_dim", 16))
        self._random = random.Random(opts.get("seed", 0))
        self.calls = 0

    async def _begin(self) -> None:
        self.calls += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.failure_rate and self._random.random() < self.failure_rate:
            raise UpstreamStatusError(
                "mock provider failure (configured failure_rate)", status=self.failure_status
            )

    def _answer(self, body: Json) -> tuple[str, list[Json]]:
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        if tools and choice != "none":
            tool = tools[0]
            if isinstance(choice, dict):
                wanted = (choice.get("function") or {}).get("name")
                tool = next(
                    (t for t in tools if (t.get("function") or {}).get("name") == wanted), tool
                )
            name = (tool.get("function") or {}).get("name", "tool")
            call = {
                "id": "call_" + hashlib.sha256(dumps(body.get("messages"))).hexdigest()[:24],
                "type": "function",
                "function": {"name": name, "arguments": "{}"},
            }
            return "", [call]
        if isinstance(self.fixed_reply, str):
            return self.fixed_reply, []
        fmt = (body.get("response_format") or {}).get("type")
        if fmt in ("json_object", "json_schema"):
            return dumps({"echo": last_user_text(body)}).decode(), []
        return f"Mock reply to: {last_user_text(body)}", []

    async def complete(self, call: Call) -> Reply:
        await self._begin()
        body = call.openai()
        text, tool_calls = self._answer(body)
        usage = Usage(estimate_tokens(body.get("messages")), estimate_tokens(text or tool_calls))
        message: Json = {"role": "assistant", "content": text or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        n = int(body.get("n") or 1)
        data: Json = {
            "id": "chatcmpl-mock" + hashlib.sha256(dumps(body)).hexdigest()[:20],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [
                {
                    "index": i,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
        }
        return Reply(OPENAI, data, usage)

    async def stream(self, call: Call) -> MockStream:
        await self._begin()
        return MockStream(self, call)

    async def embed(self, call: Call) -> Reply:
        await self._begin()
        inputs = call.body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = []
        for i, item in enumerate(items):
            digest = hashlib.sha256(dumps(item)).digest()
            vec = [((digest[j % 32] + j) % 255) / 127.0 - 1.0 for j in range(self.embedding_dim)]
            data.append({"object": "embedding", "index": i, "embedding": vec})
        tokens = estimate_tokens(inputs)
        body = {
            "object": "list",
            "data": data,
            "model": call.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Reply(OPENAI, body, Usage(prompt_tokens=tokens))

    async def count_tokens(self, call: Call) -> int | None:
        return estimate_request_tokens(call.body)

    async def list_models(self) -> list[str]:
        return list(self.settings.models or DEFAULT_MODELS)

    async def aclose(self) -> None:
        return None


class MockStream:
    protocol = OPENAI
    passthrough = False

    def __init__(self, provider: MockProvider, call: Call) -> None:
        self.provider = provider
        self.call = call
        self.usage = Usage()

    def __aiter__(self) -> AsyncIterator[Json]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[Json]:
        body = self.call.openai()
        text, tool_calls = self.provider._answer(body)
        base = {
            "id": "chatcmpl-mock" + hashlib.sha256(dumps(body)).hexdigest()[:20],
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.call.model,
        }

        # Like complete(): `n` identical choices, each streamed under its own index.
        n = int(body.get("n") or 1)

        def chunk(delta: Json, finish: str | None = None) -> Json:
            return {
                **base,
                "choices": [
                    {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
                    for i in range(n)
                ],
            }

        yield chunk({"role": "assistant", "content": ""})
        if tool_calls:
            for i, tc in enumerate(tool_calls):
                fn = tc["function"]
                yield chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": tc["id"],
                                "type": "function",
                                "function": {"name": fn["name"], "arguments": ""},
                            }
                        ]
                    }
                )
                yield chunk(
                    {"tool_calls": [{"index": i, "function": {"arguments": fn["arguments"]}}]}
                )
        else:
            for piece in self._pieces(text):
                if self.provider.chunk_delay:
                    await asyncio.sleep(self.provider.chunk_delay)
                yield chunk({"content": piece})
        yield chunk({}, "tool_calls" if tool_calls else "stop")
        self.usage = Usage(
            estimate_tokens(body.get("messages")), estimate_tokens(text or tool_calls)
        )
        opts = body.get("stream_options") or {}
        if opts.get("include_usage"):
            u = self.usage
            yield {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": u.prompt_tokens,
                    "completion_tokens": u.completion_tokens,
                    "total_tokens": u.total_tokens,
                },
            }

    def _pieces(self, text: str) -> list[str]:
        n = self.provider.chunks
        if n <= 0:
            words = text.split(" ")
            return [w if i == 0 else " " + w for i, w in enumerate(words)]
        size = max(1, -(-len(text) // n))
        return [text[i : i + size] for i in range(0, len(text), size)]

    async def aclose(self) -> None:
        return None
