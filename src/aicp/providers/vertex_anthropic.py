"""Anthropic models on Google Vertex AI.

The Messages API behind Vertex's `rawPredict` / `streamRawPredict`: the model
moves from the body into the URL, the body names the API version as
`anthropic_version`, and a Google OAuth access token signs the request.
Constructed by the Vertex dispatcher, which owns the token source.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from aicp.errors import ConfigError
from aicp.protocol.jsonutil import Json
from aicp.providers.anthropic import AnthropicProvider, api_root
from aicp.providers.base import Call

if TYPE_CHECKING:
    from aicp.config import ProviderSettings
    from aicp.providers.http import HttpClient

#: The body's version field on Vertex (Anthropic's Vertex documentation).
VERTEX_VERSION = "vertex-2023-10-16"


class VertexAnthropic(AnthropicProvider):
    def __init__(
        self,
        name: str,
        settings: ProviderSettings,
        http: HttpClient,
        token: Callable[[], Awaitable[str]],
        base_url: str,
    ) -> None:
        super().__init__(name, settings, http)
        if not settings.project:
            raise ConfigError(f"provider {name!r}: Vertex needs `project`")
        self.base_url = api_root(base_url)
        self.token = token
        self.models_root = (
            f"{self.base_url}/v1/projects/{quote(settings.project, safe='')}"
            f"/locations/{settings.region or 'global'}/publishers/anthropic/models"
        )

    def url(self, call: Call | None, operation: str) -> str:
        if operation == "count_tokens":
            return self.models_root + "/count-tokens:rawPredict"
        assert call is not None, f"{operation} needs a call"
        verb = "streamRawPredict" if operation == "stream" else "rawPredict"
        return f"{self.models_root}/{quote(call.model, safe='@.-_')}:{verb}"

    async def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {await self.token()}"}

    def body_for(self, call: Call, operation: str) -> Json:
        body = super().body_for(call, operation)
        if operation != "count_tokens":
            # The model is in the URL; Vertex rejects it in the body.
            body.pop("model", None)
        body["anthropic_version"] = VERTEX_VERSION
        return body

    async def list_models(self) -> list[str]:
        # Vertex lists no publisher models per project: the settings are the catalogue.
        return list(self.settings.models)
