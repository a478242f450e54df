"""Azure OpenAI: the OpenAI wire format on per-deployment URLs.

The upstream model name is the deployment name; every request carries an
`api-version` query parameter and the key in an `api-key` header (Azure does
not read `Authorization` for key auth). Bodies pass through as for OpenAI.
The Responses API is served only by Azure's v1 surface, `/openai/v1/responses`,
with the deployment name as the body's model and no api-version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from aicp.providers.base import Call
from aicp.providers.http import HttpClient
from aicp.providers.openai import OpenAIProvider

if TYPE_CHECKING:
    from aicp.config import ProviderSettings

#: The latest GA api-version of the data-plane inference API for deployment URLs
#: (Azure OpenAI REST reference, "API specs"); newer ones are opt-in via `api_version`.
DEFAULT_API_VERSION = "2024-10-21"


class AzureProvider(OpenAIProvider):
    def __init__(self, name: str, settings: ProviderSettings, http: HttpClient) -> None:
        super().__init__(name, settings, http)
        # An endpoint copied with its "/openai" suffix still means the resource root.
        self.base_url = self.base_url.removesuffix("/openai")
        self.api_version = settings.api_version or DEFAULT_API_VERSION
        self.responses = True
        self.headers.pop("authorization", None)
        if settings.api_key:
            self.headers["api-key"] = settings.api_key

    def __repr__(self) -> str:
        return f"AzureProvider(name={self.name!r}, endpoint={self.base_url!r})"

    def url(self, call: Call, path: str) -> str:
        if path == "/responses":
            return f"{self.base_url}/openai/v1/responses"
        deployment = quote(call.model, safe="")
        return (
            f"{self.base_url}/openai/deployments/{deployment}{path}"
            f"?api-version={quote(self.api_version, safe='')}"
        )

    async def list_models(self) -> list[str]:
        # Deployments are listed by the Azure management plane (ARM, with Entra
        # credentials), not by the data plane this key opens; use the configured ones.
        return list(self.settings.models)
