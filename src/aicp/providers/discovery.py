"""Zero-config: providers found from the environment by their own conventions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aicp.providers.presets import PRESETS


def _ollama_url(host: str) -> str:
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    # OLLAMA_HOST may name a bind address (0.0.0.0) that is not a place to connect to.
    host = host.replace("://0.0.0.0", "://127.0.0.1")
    if host.count(":") < 2:
        host += ":11434"
    return host + "/v1"


def providers_from_env(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {"mock": {"type": "mock"}}
    if env.get("OPENAI_API_KEY"):
        found["openai"] = {"type": "openai", "api_key": env["OPENAI_API_KEY"]}
        if env.get("OPENAI_BASE_URL"):
            found["openai"]["base_url"] = env["OPENAI_BASE_URL"]
    if env.get("ANTHROPIC_API_KEY"):
        found["anthropic"] = {"type": "anthropic", "api_key": env["ANTHROPIC_API_KEY"]}
        if env.get("ANTHROPIC_BASE_URL"):
            found["anthropic"]["base_url"] = env["ANTHROPIC_BASE_URL"]
    gemini_key = env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY")
    if gemini_key:
        found["gemini"] = {"type": "gemini", "api_key": gemini_key}
    if env.get("AZURE_OPENAI_API_KEY") and env.get("AZURE_OPENAI_ENDPOINT"):
        found["azure"] = {
            "type": "azure",
            "api_key": env["AZURE_OPENAI_API_KEY"],
            "base_url": env["AZURE_OPENAI_ENDPOINT"],
        }
        version = env.get("AZURE_OPENAI_API_VERSION") or env.get("OPENAI_API_VERSION")
        if version:
            found["azure"]["api_version"] = version
    if env.get("OLLAMA_HOST"):
        found["ollama"] = {"type": "ollama", "base_url": _ollama_url(env["OLLAMA_HOST"])}
    if (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")) or env.get(
        "AWS_PROFILE"
    ):
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        found["bedrock"] = {"type": "bedrock", "region": region}
    if env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        found["vertex"] = {
            "type": "vertex",
            "project": env.get("GOOGLE_CLOUD_PROJECT") or env.get("VERTEX_PROJECT"),
            "region": env.get("GOOGLE_CLOUD_LOCATION") or env.get("VERTEX_LOCATION") or "global",
        }
    for name, preset in PRESETS.items():
        if name not in found and preset.key_env and env.get(preset.key_env):
            found[name] = {"type": name, "api_key": env[preset.key_env]}
    return found
