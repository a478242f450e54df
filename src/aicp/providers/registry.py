"""Provider type -> import path; a provider nobody configured is never imported."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from aicp.errors import ConfigError
from aicp.providers.presets import PRESETS

if TYPE_CHECKING:
    from aicp.config import ProviderSettings
    from aicp.providers.base import Provider
    from aicp.providers.http import HttpClient

IMPLEMENTATIONS: dict[str, str] = {
    "openai_compatible": "aicp.providers.openai:OpenAIProvider",
    "azure": "aicp.providers.azure:AzureProvider",
    "anthropic": "aicp.providers.anthropic:AnthropicProvider",
    "gemini": "aicp.providers.gemini:GeminiProvider",
    "vertex": "aicp.providers.vertex:VertexProvider",
    "bedrock": "aicp.providers.bedrock:BedrockProvider",
    "mock": "aicp.providers.mock:MockProvider",
}


def known_types() -> list[str]:
    return sorted({*IMPLEMENTATIONS, *PRESETS} - {"openai_compatible"})


def create(name: str, settings: ProviderSettings, http: HttpClient) -> Provider:
    kind = settings.type
    target = IMPLEMENTATIONS.get(kind)
    if target is None and kind in PRESETS:
        target = IMPLEMENTATIONS["openai_compatible"]
    if target is None:
        raise ConfigError(
            f"provider {name!r}: unknown type {kind!r}; known: {', '.join(known_types())}"
        )
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"provider {name!r} of type {kind!r} needs an optional dependency: {exc}"
        ) from exc
    factory = getattr(module, attr)
    provider: Provider = factory(name, settings, http)
    if settings.local is not None:
        # The operator knows where an upstream runs (a vLLM on another host is still
        # self-hosted; an "openai" base_url may point at a local proxy).
        provider.local = settings.local
    return provider
