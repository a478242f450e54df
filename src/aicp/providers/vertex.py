"""Google Vertex AI: Gemini models, and Claude models through their own publisher.

Gemini on Vertex speaks the same generateContent format as AI Studio, so this
is GeminiProvider with other URLs and an OAuth bearer token. Which publisher
serves a model is data (`PUBLISHERS`); Claude calls go to the Anthropic
publisher's provider, created on first use so that a Gemini-only deployment
never imports it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from urllib.parse import quote

from aicp.errors import ConfigError
from aicp.protocol.gemini_embed import embeddings_to_vertex, vertex_to_embeddings
from aicp.providers.base import OPENAI, Call, Provider, Reply, Stream, usage_from_openai
from aicp.providers.gemini import GeminiProvider
from aicp.providers.google_auth import TokenSource
from aicp.providers.http import TranslatedStream

if TYPE_CHECKING:
    from aicp.config import ProviderSettings
    from aicp.providers.http import HttpClient

GOOGLE = "google"
ANTHROPIC_PUBLISHER = "anthropic"

#: (model-name prefix, publisher); anything else is Google's.
PUBLISHERS: tuple[tuple[str, str], ...] = (("claude", ANTHROPIC_PUBLISHER),)

#: publisher -> import path of the provider that serves it, made lazily.
DELEGATES: dict[str, str] = {
    ANTHROPIC_PUBLISHER: "aicp.providers.vertex_anthropic:VertexAnthropic",
}


def publisher_of(model: str) -> str:
    for prefix, publisher in PUBLISHERS:
        if model.startswith(prefix):
            return publisher
    return GOOGLE


def vertex_host(region: str) -> str:
    # The global endpoint has no region in its host name.
    if region == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{region}-aiplatform.googleapis.com"


class VertexProvider(GeminiProvider):
    def __init__(self, name: str, settings: ProviderSettings, http: HttpClient) -> None:
        super().__init__(name, settings, http)
        self.token = TokenSource(name, settings.api_key)
        self._delegates: dict[str, Provider] = {}

    # --- GeminiProvider hooks -----------------------------------------------

    def resolve_base_url(self, name: str, settings: ProviderSettings) -> str:
        if not settings.project:
            raise ConfigError(
                f"provider {name!r}: Vertex AI needs `project` (or GOOGLE_CLOUD_PROJECT)"
            )
        region = settings.region or "global"
        project = quote(settings.project, safe="")
        return f"{self.host(settings)}/v1/projects/{project}/locations/{region}"

    @staticmethod
    def host(settings: ProviderSettings) -> str:
        """`https://host`: settings.base_url (tests, private endpoints) or the region's."""
        return (settings.base_url or vertex_host(settings.region or "global")).rstrip("/")

    def model_url(self, model: str, method: str) -> str:
        return self.publisher_url(GOOGLE) + f"/models/{quote(model, safe='')}:{method}"

    def publisher_url(self, publisher: str) -> str:
        return f"{self.base_url}/publishers/{publisher}"

    async def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {await self.token()}"}

    # --- dispatch per publisher ---------------------------------------------

    def delegate(self, model: str) -> Provider | None:
        """The provider for a non-Google publisher's model, or None for Gemini."""
        publisher = publisher_of(model)
        if publisher == GOOGLE:
            return None
        inner = self._delegates.get(publisher)
        if inner is None:
            module_name, _, attr = DELEGATES[publisher].partition(":")
            factory = getattr(importlib.import_module(module_name), attr)
            # The publisher's provider builds its own paths under the host.
            inner = factory(
                self.name, self.settings, self.http, self.token, self.host(self.settings)
            )
            self._delegates[publisher] = inner
        return inner

    async def complete(self, call: Call) -> Reply:
        inner = self.delegate(call.model)
        return await (inner.complete(call) if inner else super().complete(call))

    async def stream(self, call: Call) -> Stream | TranslatedStream:
        inner = self.delegate(call.model)
        return await (inner.stream(call) if inner else super().stream(call))

    async def count_tokens(self, call: Call) -> int | None:
        inner = self.delegate(call.model)
        return await (inner.count_tokens(call) if inner else super().count_tokens(call))

    async def embed(self, call: Call) -> Reply:
        # Vertex serves embeddings through `:predict`, not batchEmbedContents.
        _, data = await self.http.post_json(
            self.model_url(call.model, "predict"),
            embeddings_to_vertex(call.body),
            await self.request_headers(call),
            call.timeouts,
        )
        out = vertex_to_embeddings(data, call.body, call.model)
        return Reply(OPENAI, out, usage_from_openai(out["usage"]))

    async def list_models(self) -> list[str]:
        # Vertex has no per-project list of the publisher models one may call.
        return list(self.settings.models)

    async def aclose(self) -> None:
        for inner in self._delegates.values():
            await inner.aclose()
        self._delegates.clear()
