"""OpenAI and every OpenAI-compatible server (presets are data, see presets.py).

Chat and embeddings bodies from an OpenAI client pass through. A Responses
client's body passes through to `/responses` when the vendor serves that API
(the preset's `responses`); otherwise it is translated to chat completions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aicp.errors import ConfigError, UpstreamUnavailable
from aicp.protocol import sse
from aicp.protocol.jsonutil import Json, dumps, loads
from aicp.protocol.openai import strip_extensions
from aicp.protocol.responses import usage_from_responses
from aicp.providers.base import OPENAI, RESPONSES, Call, Reply, Usage, usage_from_openai
from aicp.providers.http import ByteStream, DataLineTap, HttpClient, TranslatedStream
from aicp.providers.presets import PRESETS, Preset

if TYPE_CHECKING:
    from aicp.config import ProviderSettings


class OpenAIProvider:
    native = OPENAI

    def __init__(self, name: str, settings: ProviderSettings, http: HttpClient) -> None:
        preset = PRESETS.get(settings.type, Preset(""))
        base_url = settings.base_url or preset.base_url
        if not base_url:
            raise ConfigError(f"provider {name!r}: base_url is required for {settings.type!r}")
        self.name = name
        self.local = preset.local
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.settings = settings
        self.drop_params = preset.drop_params
        self.responses = preset.responses
        self.headers = {"content-type": "application/json", **preset.headers, **settings.headers}
        if settings.api_key:
            self.headers["authorization"] = f"Bearer {settings.api_key}"

    # --- URLs and headers (Azure overrides these) ----------------------------

    def url(self, call: Call, path: str) -> str:
        return self.base_url + path

    def request_headers(self, call: Call) -> dict[str, str]:
        tp = call.headers.get("traceparent")
        if tp is None:
            return self.headers
        return {**self.headers, "traceparent": tp}

    def native_responses(self, call: Call) -> bool:
        """A Responses request this upstream answers in its own Responses API."""
        return self.responses and call.ingress == RESPONSES

    def body_for(self, call: Call) -> Json:
        if call.ingress == OPENAI or self.native_responses(call):
            body = call.passthrough_body()
        else:
            body = strip_extensions(call.openai())
            body["model"] = call.model
        for key in self.drop_params.intersection(body):
            del body[key]
        return body

    # --- the Provider protocol ----------------------------------------------

    async def complete(self, call: Call) -> Reply:
        if self.native_responses(call):
            raw, data = await self.http.post_json(
                self.url(call, "/responses"),
                self.body_for(call),
                self.request_headers(call),
                call.timeouts,
            )
            return Reply(RESPONSES, data, usage_from_responses(data.get("usage")), raw=raw)
        raw, data = await self.http.post_json(
            self.url(call, "/chat/completions"),
            self.body_for(call),
            self.request_headers(call),
            call.timeouts,
        )
        usage = usage_from_openai(data.get("usage"))
        if call.ingress == OPENAI:
            return Reply(OPENAI, data, usage, raw=raw)
        return Reply(OPENAI, data, usage)

    async def stream(self, call: Call) -> ByteStream | TranslatedStream:
        body = self.body_for(call)
        body["stream"] = True
        if self.native_responses(call):
            resp = await self.http.request(
                "POST",
                self.url(call, "/responses"),
                body=dumps(body),
                headers=self.request_headers(call),
                timeouts=call.timeouts,
            )
            responses_tap = ResponsesUsageTap()
            stream = ByteStream(resp, RESPONSES, call.timeouts.idle, responses_tap.feed)
            stream.usage = responses_tap.usage
            return stream
        passthrough = call.ingress == OPENAI
        if not passthrough:
            # Translation needs usage for the client's final event.
            body["stream_options"] = {"include_usage": True}
        resp = await self.http.request(
            "POST",
            self.url(call, "/chat/completions"),
            body=dumps(body),
            headers=self.request_headers(call),
            timeouts=call.timeouts,
        )
        if passthrough:
            tap = UsageTap()
            stream = ByteStream(resp, OPENAI, call.timeouts.idle, tap.feed)
            stream.usage = tap.usage
            return stream
        return TranslatedStream(ByteStream(resp, OPENAI, call.timeouts.idle), ChunkParser())

    async def embed(self, call: Call) -> Reply:
        body = call.passthrough_body()
        raw, data = await self.http.post_json(
            self.url(call, "/embeddings"), body, self.request_headers(call), call.timeouts
        )
        return Reply(OPENAI, data, usage_from_openai(data.get("usage")), raw=raw)

    async def count_tokens(self, call: Call) -> int | None:
        return None  # OpenAI-compatible servers have no counting endpoint

    async def list_models(self) -> list[str]:
        if self.settings.models or not self.settings.discover_models:
            return list(self.settings.models)
        return await self.http.model_ids(
            self.base_url + "/models", self.headers, f"provider {self.name!r}: /models"
        )

    async def aclose(self) -> None:
        return None


class ChunkParser:
    """OpenAI SSE events -> chunk dicts (for translation into another protocol)."""

    def __init__(self) -> None:
        self.usage = Usage()

    def feed(self, event: sse.Event) -> list[Json]:
        if event.data == "[DONE]" or not event.data:
            return []
        chunk = loads(event.data)
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk:
            err = chunk["error"]
            msg = err.get("message") if isinstance(err, dict) else str(err)
            raise UpstreamUnavailable(f"upstream stream error: {msg}")
        if chunk.get("usage"):
            self.usage = usage_from_openai(chunk["usage"])
        return [chunk]

    def close(self) -> list[Json]:
        return []


class UsageTap(DataLineTap):
    """Usage of a pass-through OpenAI stream.

    The last usage object wins: the final chunk when include_usage is set.
    """

    __slots__ = ()

    def _line(self, payload: bytes) -> None:
        try:
            data = loads(payload)
        except ValueError:
            return
        if isinstance(data, dict) and isinstance(data.get("usage"), dict):
            u = usage_from_openai(data["usage"])
            self.usage.prompt_tokens = u.prompt_tokens
            self.usage.completion_tokens = u.completion_tokens
            self.usage.cached_tokens = u.cached_tokens


class ResponsesUsageTap(DataLineTap):
    """Usage of a pass-through Responses stream, from its final event.

    `response.completed` (or `.incomplete`, `.failed`) carries the whole response,
    output included, on one line; usage comes after the output, so the line is
    kept whole up to a generous size.
    """

    __slots__ = ()

    max_line = 8 * 1024 * 1024

    def _line(self, payload: bytes) -> None:
        try:
            data = loads(payload)
        except ValueError:
            return
        response = data.get("response") if isinstance(data, dict) else None
        if isinstance(response, dict) and isinstance(response.get("usage"), dict):
            u = usage_from_responses(response["usage"])
            self.usage.prompt_tokens = u.prompt_tokens
            self.usage.completion_tokens = u.completion_tokens
            self.usage.cached_tokens = u.cached_tokens
