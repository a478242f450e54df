"""AWS Bedrock through the Converse and ConverseStream APIs (and Titan embeddings).

Converse is one request shape for every chat model Bedrock hosts, so this
provider always translates: canonical OpenAI chat in, canonical OpenAI data
out (`native = "bedrock"` never equals an ingress protocol). Requests are
signed with SigV4 by botocore, or carry a Bedrock API key as a bearer token.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import yarl

from aicp.errors import ConfigError, InvalidRequest, UpstreamUnavailable
from aicp.protocol.bedrock import (
    StreamTranslator,
    chat_to_converse,
    converse_to_completion,
    stream_exception,
)
from aicp.protocol.jsonutil import Json, dumps, loads
from aicp.providers.aws import (
    CREDENTIAL_OPTIONS,
    BearerSigner,
    EventStreamDecoder,
    Signer,
    SigV4Signer,
    botocore_module,
)
from aicp.providers.base import OPENAI, Call, Reply, Usage, usage_from_openai
from aicp.providers.http import ByteStream, HttpClient

if TYPE_CHECKING:
    from aicp.config import ProviderSettings

BEDROCK = "bedrock"
_JSON = "application/json"
_EVENT_STREAM = "application/vnd.amazon.eventstream"
_OPTIONS = CREDENTIAL_OPTIONS | {"embed_concurrency"}


class BedrockProvider:
    native = BEDROCK
    local = False

    def __init__(self, name: str, settings: ProviderSettings, http: HttpClient) -> None:
        unknown = set(settings.options) - _OPTIONS
        if unknown:
            raise ConfigError(
                f"provider {name!r}: unknown options {sorted(unknown)}; known: {sorted(_OPTIONS)}"
            )
        self.name = name
        self.settings = settings
        self.http = http
        # Discovery fills the region from AWS_REGION; a bare config falls back like the CLI.
        self.region = settings.region or "us-east-1"
        default = f"https://bedrock-runtime.{self.region}.amazonaws.com"
        self.base_url = (settings.base_url or default).rstrip("/")
        self.signer: Signer = (
            BearerSigner(settings.api_key)
            if settings.api_key
            else SigV4Signer(name, self.region, settings.options)
        )
        botocore_module(name, "ConverseStream")  # fail at start-up, not on the first stream
        self.embed_concurrency = int(settings.options.get("embed_concurrency", 8))

    def __repr__(self) -> str:
        return f"BedrockProvider(name={self.name!r}, region={self.region!r})"

    def url(self, model: str, operation: str) -> str:
        # A model id may be an ARN (':' and '/'), so it is one encoded path segment.
        # yarl then normalises the URL as aiohttp will send it, and that form is signed.
        raw = f"{self.base_url}/model/{quote(model, safe='')}/{operation}"
        return str(yarl.URL(raw))

    async def _post(
        self, call: Call, url: str, payload: Json, accept: str
    ) -> aiohttp.ClientResponse:
        body = dumps(payload)
        headers = {"content-type": _JSON, "accept": accept}
        traceparent = call.headers.get("traceparent")
        if traceparent:
            headers["traceparent"] = traceparent
        signed = await self.signer.sign("POST", url, body, headers)
        return await self.http.request(
            "POST", url, body=body, headers=signed, timeouts=call.timeouts
        )

    async def _post_json(self, call: Call, url: str, payload: Json) -> Json:
        resp = await self._post(call, url, payload, _JSON)
        _, data = await self.http.read_json(resp, call.timeouts, "Bedrock")
        return data

    # --- the Provider protocol ----------------------------------------------

    async def complete(self, call: Call) -> Reply:
        request = chat_to_converse(call.openai(), call.model)
        data = await self._post_json(call, self.url(call.model, "converse"), request)
        completion = converse_to_completion(data, call.model)
        return Reply(OPENAI, completion, usage_from_openai(completion["usage"]))

    async def stream(self, call: Call) -> ConverseStream:
        request = chat_to_converse(call.openai(), call.model)
        decoder = EventStreamDecoder(self.name)
        resp = await self._post(
            call, self.url(call.model, "converse-stream"), request, _EVENT_STREAM
        )
        inner = ByteStream(resp, BEDROCK, call.timeouts.idle)
        return ConverseStream(inner, decoder, StreamTranslator(call.model))

    async def embed(self, call: Call) -> Reply:
        """Titan text embeddings: one InvokeModel per input, run concurrently."""
        texts = _embedding_inputs(call.body.get("input"))
        extra: Json = {}
        if call.body.get("dimensions") is not None:
            extra["dimensions"] = call.body["dimensions"]
        gate = asyncio.Semaphore(self.embed_concurrency)
        url = self.url(call.model, "invoke")

        async def one(text: str) -> Json:
            async with gate:
                return await self._post_json(call, url, {"inputText": text, **extra})

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(t)) for t in texts]
        results = [t.result() for t in tasks]
        data = _embeddings_response(results, call.model, call.body.get("encoding_format"))
        return Reply(OPENAI, data, usage_from_openai(data["usage"]))

    async def count_tokens(self, call: Call) -> int | None:
        return None

    async def list_models(self) -> list[str]:
        # Listing foundation models is an API of the `bedrock` control-plane
        # service (ListFoundationModels), not of bedrock-runtime, and needs other
        # permissions; the models this provider serves are the configured ones.
        return list(self.settings.models)

    async def aclose(self) -> None:
        return None


class ConverseStream:
    """A ConverseStream body re-expressed as canonical OpenAI chunks."""

    __slots__ = ("_decoder", "_inner", "_translator", "passthrough", "protocol")

    def __init__(
        self, inner: ByteStream, decoder: EventStreamDecoder, translator: StreamTranslator
    ) -> None:
        self._inner = inner
        self._decoder = decoder
        self._translator = translator
        self.protocol = OPENAI
        self.passthrough = False

    @property
    def usage(self) -> Usage:
        return self._translator.usage

    def __aiter__(self) -> AsyncIterator[Json]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[Json]:
        decoder = self._decoder
        async for raw in self._inner:
            for message in decoder.feed(raw):
                for chunk in self._translate(message):
                    yield chunk
        if decoder.pending:
            raise UpstreamUnavailable("the Bedrock stream ended in the middle of an event")
        for chunk in self._translator.close():
            yield chunk

    def _translate(self, message: Any) -> list[Json]:
        headers = message.headers
        kind = headers.get(":message-type")
        if kind == "exception":
            raise stream_exception(str(headers.get(":exception-type")), message.payload)
        if kind == "error":
            code = headers.get(":error-code", "error")
            text = headers.get(":error-message", "")
            raise UpstreamUnavailable(f"Bedrock stream error: {code}: {text}")
        try:
            payload = loads(message.payload) if message.payload else {}
        except ValueError as exc:
            raise UpstreamUnavailable("Bedrock sent an event that is not JSON") from exc
        return self._translator.feed(str(headers.get(":event-type")), payload)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _embedding_inputs(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str) for i in items):
        raise InvalidRequest(
            "Bedrock Titan embeddings take a string or a list of strings, not tokens",
            param="input",
        )
    return items


def _embeddings_response(results: list[Json], model: str, encoding: Any) -> Json:
    data: list[Json] = []
    tokens = 0
    for index, result in enumerate(results):
        vector = result.get("embedding")
        if not isinstance(vector, list):
            raise UpstreamUnavailable("Bedrock answered an embedding request without `embedding`")
        tokens += int(result.get("inputTextTokenCount") or 0)
        embedding: Any = vector
        if encoding == "base64":
            # OpenAI's base64 form: little-endian float32, what its SDK decodes.
            packed = struct.pack(f"<{len(vector)}f", *vector)
            embedding = base64.b64encode(packed).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
