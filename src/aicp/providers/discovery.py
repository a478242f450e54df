"""Zero-config: providers found from the environment by their own conventions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aicp.providers.presets import PRESETS


def _ollama_url(value: str) -> str:
    """OLLAMA_HOST read as Ollama's own client reads it (envconfig.Host), plus `/v1`.

    `host`, `host:port`, `[::1]`, `::1`, `:port`, `http://host` (port 80),
    `https://host/path` (port 443); a bare host gets port 11434.
    """
    value = value.strip().strip("\"'")
    scheme, sep, rest = value.partition("://")
    default_port = {"http": "80", "https": "443"}.get(scheme, "11434") if sep else "11434"
    if not sep:
        scheme, rest = "http", value
    hostport, _, path = rest.partition("/")
    host, port = _split_host_port(hostport)
    if port is None or not port.isdigit() or int(port) > 65535:
        port = default_port
    # A bind-all address (0.0.0.0, ::) or none at all is not a place to connect to.
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    path = path.rstrip("/")
    return f"{scheme}://{host}:{port}" + (f"/{path}" if path else "") + "/v1"


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        host, _, after = hostport[1:].partition("]")
        return host, after[1:] if after.startswith(":") else None
    if hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
        return host, port
    return hostport, None  # a bare host, or an IPv6 address without brackets


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
    if env.get("AWS_BEARER_TOKEN_BEDROCK"):
        # A Bedrock API key (AWS docs, "Use an Amazon Bedrock API key") wins over SigV4.
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        found["bedrock"] = {
            "type": "bedrock",
            "region": region,
            "api_key": env["AWS_BEARER_TOKEN_BEDROCK"],
        }
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
