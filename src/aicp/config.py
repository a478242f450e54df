"""Settings: typed, frozen, validated once at start-up.

Sources, lowest precedence first: built-in defaults, providers found from the
environment by their own conventions (zero-config), the YAML file named by
`--config` or `AICP_CONFIG`. Unknown keys are rejected with file, line and key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aicp.errors import ConfigError
from aicp.memory.settings import (
    CacheSettings,
    CompressionSettings,
    LearningSettings,
    MemorySettings,
)
from aicp.pipeline.settings import PipelineSettings, RegistrySettings

Strategy = Literal["priority", "weighted", "least_latency", "lowest_cost", "learned"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = 4000
    workers: int = 1
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    #: Until virtual keys exist, whether anyone may force a route with `x-aicp-route`.
    allow_forced_routes: bool = False
    #: A master key bootstraps admin access (`AICP_MASTER_KEY`).
    master_key: str | None = Field(default=None, repr=False)


class ProviderSettings(_Strict):
    #: Registry name of the implementation or an OpenAI-compatible preset (see providers/presets).
    type: str
    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    #: Azure api-version, Anthropic-version default and similar.
    api_version: str | None = None
    #: Cloud region (Bedrock, Vertex) and project (Vertex).
    region: str | None = None
    project: str | None = None
    #: Models this provider serves; OpenAI-compatible providers also ask `GET /models`.
    models: list[str] = Field(default_factory=list)
    discover_models: bool = True
    #: Implementation-specific settings (the mock's latency and failure rate, ...).
    options: dict[str, Any] = Field(default_factory=dict, repr=False)
    #: Runs on your own machines (allowed in offline mode, `locality: local` in policies);
    #: default: the type's (ollama, vllm, lmstudio, llamacpp and mock are local).
    local: bool | None = None


class DeploymentSettings(_Strict):
    provider: str
    model: str
    weight: float = Field(default=1.0, ge=0)
    priority: int = 0
    #: Per-deployment limits: requests and tokens per minute, requests in flight.
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, gt=0)
    input_cost_per_mtok: float = 0.0
    output_cost_per_mtok: float = 0.0


class ModelSettings(_Strict):
    name: str
    deployments: list[DeploymentSettings] = Field(min_length=1)
    strategy: Strategy = "priority"
    #: Model names (or aliases/groups) tried in order when every deployment failed.
    fallbacks: list[str] = Field(default_factory=list)


class GroupSettings(_Strict):
    models: list[str] = Field(min_length=1)
    strategy: Strategy = "priority"
    fallbacks: list[str] = Field(default_factory=list)


class BreakerSettings(_Strict):
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    min_requests: int = Field(default=10, ge=1)
    window_s: float = Field(default=10.0, gt=0)
    open_s: float = Field(default=30.0, gt=0)
    half_open_probes: int = Field(default=3, ge=1)


class ReliabilitySettings(_Strict):
    deadline_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    first_byte_timeout_s: float = Field(default=300.0, gt=0)
    idle_timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    backoff_base_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    #: Envoy retry budget: concurrent retries <= percent of active requests, floor min.
    retry_budget_percent: float = Field(default=20.0, ge=0, le=100)
    retry_budget_min: int = Field(default=3, ge=0)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)


class StorageSettings(_Strict):
    #: Where the embedded database, the key pepper and other local state live.
    data_dir: str = ".aicp"
    #: PostgreSQL in team mode (`AICP_DATABASE_URL`); SQLite in data_dir when unset.
    database_url: str | None = Field(default=None, repr=False)
    #: Redis for shared counters and cache invalidation (`AICP_REDIS_URL`).
    redis_url: str | None = Field(default=None, repr=False)
    #: Server-side pepper for key hashes (`AICP_KEY_PEPPER`); generated in data_dir when unset.
    key_pepper: str | None = Field(default=None, repr=False)


class ReceiptSettings(_Strict):
    #: The log's name in its checkpoints (C2SP tlog-checkpoint "origin" line).
    origin: str = "aicp.local/receipts"
    #: Ed25519 private key for checkpoints: a path to a PEM (PKCS#8) file, or
    #: `AICP_RECEIPTS_SIGNING_KEY`. When unset, one is made in the data directory.
    signing_key: str | None = Field(default=None, repr=False)
    #: Seconds between automatic checkpoints (when the log grew); 0 turns them off.
    checkpoint_interval_s: float = Field(default=60.0, ge=0)
    #: What is kept of request and response bodies: "none" (only their hashes, in the
    #: receipt), "full" (needed by `aicp replay`) or "redacted" (JSON structure kept,
    #: text replaced by its length). Off by default: bodies are users' data.
    bodies: Literal["full", "redacted", "none"] = "none"
    #: Days bodies are kept; the receipts (which commit to their hashes) stay. 0 = forever.
    body_retention_days: float = Field(default=30.0, ge=0)
    #: Wait for the receipt's commit before the response completes (the durable default).
    durable: bool = True
    #: Group commit: at most this many receipts per transaction.
    max_batch: int = Field(default=256, ge=1)


class LoggingSettings(_Strict):
    #: "json" (production), "console" (readable), or "auto": console on a terminal.
    format: Literal["auto", "json", "console"] = "auto"
    level: str = "INFO"
    #: One line per request (`llm.request.completed` / `failed`) at INFO.
    requests: bool = True
    #: Log request and response bodies at DEBUG. Off by default: bodies hold user data.
    bodies: bool = False


class ObservabilitySettings(_Strict):
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    #: Prometheus metrics at GET /metrics.
    metrics: bool = True
    #: Events a WebSocket consumer may have queued before it is dropped as too slow.
    event_queue: int = Field(default=1000, ge=1)


TASK_CLASSES = ("code", "infra", "legal", "security", "general", "document", "automation")
SENSITIVITIES = ("public", "internal", "confidential", "restricted")
Action = Literal["off", "allow", "flag", "redact", "block"]


class TrustSettings(_Strict):
    """The classify stage: task class, sensitivity and trust (docs/guardrails.md)."""

    task_classes: list[str] = Field(default_factory=lambda: list(TASK_CLASSES), min_length=1)
    #: Extra keywords per task class, added to the built-in ones.
    keywords: dict[str, list[str]] = Field(default_factory=dict)
    #: Sensitivity when nothing says otherwise.
    default_sensitivity: Literal["public", "internal", "confidential", "restricted"] = "internal"
    #: Sensitivity floors per project id (labels of the data a project handles).
    projects: dict[str, Literal["public", "internal", "confidential", "restricted"]] = Field(
        default_factory=dict
    )


class DetectorSettings(_Strict):
    action: Action = "flag"
    #: Kinds to look for (empty: all the detector knows).
    kinds: list[str] = Field(default_factory=list)
    #: Injection score at or above which the injection detector reports (0..1).
    threshold: float = Field(default=0.5, ge=0, le=1)
    #: Blocklist terms.
    terms: list[str] = Field(default_factory=list)


def _detector(action: str, **more: Any) -> Any:
    return Field(default_factory=lambda: DetectorSettings(action=action, **more))  # type: ignore[arg-type]


class InputGuardSettings(_Strict):
    pii: DetectorSettings = _detector("flag")
    secrets: DetectorSettings = _detector("block")
    injection: DetectorSettings = _detector("flag")
    blocklist: DetectorSettings = _detector("block")
    #: Text that never counts as a finding (an allowlisted address, a test card number).
    allowlist: list[str] = Field(default_factory=list)
    max_chars: int | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)


class OutputGuardSettings(_Strict):
    """Off by default: streams stay byte-for-byte pass-through and cost nothing extra
    (guarding a stream re-reads every event: docs/guardrails.md has the cost)."""

    pii: DetectorSettings = _detector("off")
    secrets: DetectorSettings = _detector("off")


class GuardrailSettings(_Strict):
    enabled: bool = True
    input: InputGuardSettings = Field(default_factory=InputGuardSettings)
    output: OutputGuardSettings = Field(default_factory=OutputGuardSettings)
    #: Put redacted originals back into the response for the caller who sent them.
    restore: bool = True


class PolicySettings(_Strict):
    enabled: bool = True
    #: A directory of *.cedar files, watched and reloaded on change.
    dir: str | None = None
    #: Include the shipped policy pack (docs/policy.md).
    pack: bool = True
    #: How often the directory is checked for changes (0: never).
    reload_s: float = Field(default=1.0, ge=0)
    #: Tool (function) names that act on production: a request declaring one is
    #: `use_tool` on a Tool with `production == true` (the pack wants an admin override).
    production_tools: list[str] = Field(default_factory=list)


class Settings(_Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    models: list[ModelSettings] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)
    groups: dict[str, GroupSettings] = Field(default_factory=dict)
    reliability: ReliabilitySettings = Field(default_factory=ReliabilitySettings)
    receipts: ReceiptSettings = Field(default_factory=ReceiptSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    #: live, or offline: only local routes for every request (a request may ask for offline
    #: or simulate with `x-aicp-mode`).
    mode: Literal["live", "offline"] = "live"
    trust: TrustSettings = Field(default_factory=TrustSettings)
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    compression: CompressionSettings = Field(default_factory=CompressionSettings)
    learning: LearningSettings = Field(default_factory=LearningSettings)
    pipelines: PipelineSettings = Field(default_factory=PipelineSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    #: Where the settings came from, for messages.
    source: str = "<defaults>"

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, v: dict[str, ProviderSettings]) -> dict[str, ProviderSettings]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"provider name {name!r} may only hold letters, digits, _ . -")
        return v


# --- loading -----------------------------------------------------------------

_STORAGE_ENV = {
    "data_dir": "AICP_DATA_DIR",
    "database_url": "AICP_DATABASE_URL",
    "redis_url": "AICP_REDIS_URL",
    "key_pepper": "AICP_KEY_PEPPER",
}

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from the environment and an optional YAML file."""
    env = os.environ if env is None else env
    path = path or env.get("AICP_CONFIG") or None
    data: dict[str, Any] = {}
    lines: dict[tuple[str | int, ...], int] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read config: {exc}") from exc
        data, lines = _parse_yaml(text, source, env)
    from aicp.providers.discovery import providers_from_env

    discovered = providers_from_env(env)
    # A section of the wrong type is left as it is, for validation to report with its line.
    providers = data.get("providers") or {}
    if isinstance(providers, dict):
        data["providers"] = {**discovered, **providers}
    server = data.get("server") or {}
    if isinstance(server, dict):
        server = dict(server)
        if env.get("AICP_MASTER_KEY") and "master_key" not in server:
            server["master_key"] = env["AICP_MASTER_KEY"]
        server.update({k: v for k, v in overrides.items() if v is not None})
        data["server"] = server
    storage = data.get("storage") or {}
    if isinstance(storage, dict):
        storage = dict(storage)
        for key, var in _STORAGE_ENV.items():
            if env.get(var) and key not in storage:
                storage[key] = env[var]
        data["storage"] = storage
    _env_section(data, ("receipts",), {"signing_key": "AICP_RECEIPTS_SIGNING_KEY"}, env)
    _env_section(
        data,
        ("observability", "logging"),
        {"format": "AICP_LOG_FORMAT", "level": "AICP_LOG_LEVEL"},
        env,
    )
    _env_section(
        data,
        ("pipelines",),
        {
            "executor_id": "AICP_PIPELINES_EXECUTOR_ID",
            "tracking_uri": "MLFLOW_TRACKING_URI",
            "ray_address": "RAY_ADDRESS",
        },
        env,
    )
    data["source"] = source
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, lines)) from exc
    _check_providers_exist(settings, lines)
    return settings


def _env_section(
    data: dict[str, Any], path: tuple[str, ...], names: dict[str, str], env: Mapping[str, str]
) -> None:
    """Environment variables fill keys the file left unset (the file wins)."""
    if not any(env.get(var) for var in names.values()):
        return
    node = data
    for part in path:
        child = node.get(part) or {}
        if not isinstance(child, dict):
            return  # left for validation to report with its line
        node[part] = child = dict(child)
        node = child
    for key, var in names.items():
        if env.get(var) and key not in node:
            node[key] = env[var]


def _check_providers_exist(settings: Settings, lines: Mapping[tuple[str | int, ...], int]) -> None:
    for i, model in enumerate(settings.models):
        for j, dep in enumerate(model.deployments):
            if dep.provider in settings.providers:
                continue
            line = lines.get(("models", i, "deployments", j, "provider"))
            where = f"{settings.source}, line {line}" if line else settings.source
            raise ConfigError(
                f"{where}: model {model.name!r} uses provider {dep.provider!r}, which is not "
                f"configured (have: {', '.join(sorted(settings.providers))})"
            )


def _parse_yaml(
    text: str, source: str, env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[tuple[str | int, ...], int]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    if root is None:
        return {}, {}
    lines: dict[tuple[str | int, ...], int] = {}
    value = _build(root, (), lines, source, env)
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    return value, lines


def _build(
    node: yaml.Node,
    path: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    source: str,
    env: Mapping[str, str],
) -> Any:
    # A mapping value keeps its key's line (set by the caller), not the line its value starts on.
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                _merge(value_node, path, lines, source, env, merged)
                continue
            key = str(key_node.value)
            if key in out:
                raise ConfigError(
                    f"{source}, line {key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), lines, source, env)
        return {**merged, **out} if merged else out
    if isinstance(node, yaml.SequenceNode):
        return [_build(n, (*path, i), lines, source, env) for i, n in enumerate(node.value)]
    loader = yaml.SafeLoader("")
    try:
        scalar = loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
    if isinstance(scalar, str):
        return _interpolate(scalar, env, f"{source}, line {node.start_mark.line + 1}")
    return scalar


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _merge(
    node: yaml.Node,
    path: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    source: str,
    env: Mapping[str, str],
    into: dict[str, Any],
) -> None:
    """YAML merge keys (`<<: *defaults`): the mapping's own keys win, then earlier merges."""
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for src in sources:
        value = _build(src, path, lines, source, env)
        if not isinstance(value, dict):
            raise ConfigError(
                f"{source}, line {src.start_mark.line + 1}: '<<' must merge a mapping"
            )
        for key, item in value.items():
            into.setdefault(key, item)


def _interpolate(value: str, env: Mapping[str, str], where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set")

    return _ENV_REF.sub(sub, value)


def _describe(exc: ValidationError, source: str, lines: Mapping[tuple[str | int, ...], int]) -> str:
    parts = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        line = None
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in lines:
                line = lines[loc[:cut]]
                break
        key = ".".join(str(p) for p in loc) or "<root>"
        where = f"{source}, line {line}" if line else source
        if err["type"] == "extra_forbidden":
            parts.append(f"{where}: unknown key {key!r}")
        else:
            parts.append(f"{where}: {key}: {err['msg']}")
    return "; ".join(parts)
