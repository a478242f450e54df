"""Anthropic's Messages API; the base for Anthropic models on other clouds (vertex_anthropic).

An Anthropic client's body goes through with only `model` rewritten and the
upstream bytes come back untouched; an OpenAI client's body is translated
(protocol/anthropic) and the answer returned in canonical form. Subclasses
change where a request goes, how it is signed and how the body is wrapped
through `url`, `auth_headers` and `body_for`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aicp.errors import InvalidRequest
from aicp.protocol.anthropic import (
    EventTranslator,
    chat_to_messages,
    message_to_completion,
    usage_from_anthropic,
)
from aicp.protocol.jsonutil import Json, dumps, loads
from aicp.providers.base import ANTHROPIC, OPENAI, Call, Reply
from aicp.providers.http import ByteStream, DataLineTap, HttpClient, TranslatedStream

if TYPE_CHECKING:
    from aicp.config import ProviderSettings

DEFAULT_BASE_URL = "https://api.anthropic.com"
#: The API version sent when neither the client nor the settings name one.
DEFAULT_VERSION = "2023-06-01"
#: Client headers an Anthropic upstream should see; never the client's credentials.
FORWARDED_HEADERS = ("anthropic-beta", "traceparent", "tracestate")
#: Fields of a messages body that /v1/messages/count_tokens accepts.
COUNT_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking"})

_PATHS = {
    "messages": "/v1/messages",
    "stream": "/v1/messages",
    "count_tokens": "/v1/messages/count_tokens",
    "models": "/v1/models?limit=1000",
}


def api_root(url: str) -> str:
    """`https://host` from `https://host`, `https://host/` or `https://host/v1`."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class AnthropicProvider:
    native = ANTHROPIC
    local = False

    def __init__(self, name: str, settings: ProviderSettings, http: HttpClient) -> None:
        self.name = name
        self.settings = settings
        self.http = http
        self.base_url = api_root(settings.base_url or DEFAULT_BASE_URL)
        self.api_version = settings.api_version or DEFAULT_VERSION
        self.headers = {"content-type": "application/json", **settings.headers}

    # --- hooks (Vertex overrides these) ---------------------------------------

    def url(self, call: Call | None, operation: str) -> str:
        """Where `operation` ("messages", "stream", "count_tokens", "models") goes."""
        return self.base_url + _PATHS[operation]

    async def auth_headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"x-api-key": key} if key else {}

    def body_for(self, call: Call, operation: str) -> Json:
        if call.ingress == ANTHROPIC:
            return call.passthrough_body()
        body = chat_to_messages(call.openai())
        body["model"] = call.model
        if operation == "count_tokens":
            body = {k: v for k, v in body.items() if k in COUNT_FIELDS}
        return body

    async def request_headers(self, client: Mapping[str, str]) -> dict[str, str]:
        headers = {**self.headers, **await self.auth_headers()}
        headers["anthropic-version"] = client.get("anthropic-version") or self.api_version
        for name in FORWARDED_HEADERS:
            value = client.get(name)
            if value:
                headers[name] = value
        return headers

    # --- the Provider protocol ------------------------------------------------

    async def complete(self, call: Call) -> Reply:
        raw, data = await self.http.post_json(
            self.url(call, "messages"),
            self.body_for(call, "messages"),
            await self.request_headers(call.headers),
            call.timeouts,
        )
        usage = usage_from_anthropic(data.get("usage"))
        if call.ingress == ANTHROPIC:
            return Reply(ANTHROPIC, data, usage, raw=raw)
        return Reply(OPENAI, message_to_completion(data, call.model), usage)

    async def stream(self, call: Call) -> ByteStream | TranslatedStream:
        body = self.body_for(call, "stream")
        body["stream"] = True
        resp = await self.http.request(
            "POST",
            self.url(call, "stream"),
            body=dumps(body),
            headers=await self.request_headers(call.headers),
            timeouts=call.timeouts,
        )
        if call.ingress == ANTHROPIC:
            tap = UsageTap()
            stream = ByteStream(resp, ANTHROPIC, call.timeouts.idle, tap.feed)
            stream.usage = tap.usage
            return stream
        inner = ByteStream(resp, ANTHROPIC, call.timeouts.idle)
        return TranslatedStream(inner, EventTranslator(call.model))

    async def embed(self, call: Call) -> Reply:
        raise InvalidRequest(
            f"provider {self.name!r} serves Anthropic models, which have no embeddings API",
            param="model",
        )

    async def count_tokens(self, call: Call) -> int | None:
        _, data = await self.http.post_json(
            self.url(call, "count_tokens"),
            self.body_for(call, "count_tokens"),
            await self.request_headers(call.headers),
            call.timeouts,
        )
        n = data.get("input_tokens")
        return n if isinstance(n, int) else None

    async def list_models(self) -> list[str]:
        if self.settings.models or not self.settings.discover_models:
            return list(self.settings.models)
        return await self.http.model_ids(
            self.url(None, "models"),
            await self.request_headers({}),
            f"provider {self.name!r}: /v1/models",
        )

    async def aclose(self) -> None:
        return None


class UsageTap(DataLineTap):
    """Usage of a pass-through Anthropic stream.

    Usage appears only in `message_start` (input and cache tokens) and
    `message_delta` (cumulative output, sometimes input), so the counts seen
    so far are merged.
    """

    __slots__ = ("_raw",)

    def __init__(self) -> None:
        super().__init__()
        self._raw: Json = {}

    def _line(self, payload: bytes) -> None:
        try:
            data = loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        usage = data.get("usage")
        if data.get("type") == "message_start":
            usage = (data.get("message") or {}).get("usage")
        if not isinstance(usage, dict):
            return
        self._raw.update({k: v for k, v in usage.items() if isinstance(v, int)})
        counted = usage_from_anthropic(self._raw)
        self.usage.prompt_tokens = counted.prompt_tokens
        self.usage.completion_tokens = counted.completion_tokens
        self.usage.cached_tokens = counted.cached_tokens
        self.usage.cache_creation_tokens = counted.cache_creation_tokens
