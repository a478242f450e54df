"""Settings of the stages that remember: caches, project memory, compression and
learned routing (`cache:`, `memory:`, `compression:`, `learning:` in aicp.yaml).

Everything here is off until switched on: a cache answers only for what was
opted in (all models, or some models, projects or keys), memory is added only
to requests that ask for it or whose project is listed, compression runs only
when enabled. docs/caching.md and docs/memory.md say what each does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Step = Literal["whitespace", "dedupe", "trim", "summarise"]
DEFAULT_STEPS: tuple[Step, ...] = ("whitespace", "dedupe", "trim")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _OptIn(_Strict):
    #: For every request (of every model, project and key).
    enabled: bool = False
    #: Or only for these requested model names, projects (ids) and keys (ids).
    models: list[str] = Field(default_factory=list)
    projects: list[str] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)

    def applies(self, model: str, project: str | None, key: str | None) -> bool:
        return (
            self.enabled
            or model in self.models
            or (project is not None and project in self.projects)
            or (key is not None and key in self.keys)
        )

    @property
    def anywhere(self) -> bool:
        return self.enabled or bool(self.models or self.projects or self.keys)


class ExactCacheSettings(_OptIn):
    ttl_s: float = Field(default=3600.0, gt=0)


class SemanticCacheSettings(_OptIn):
    ttl_s: float = Field(default=86400.0, gt=0)
    #: Cosine similarity a cached question needs to answer a new one.
    threshold: float = Field(default=0.92, gt=0, le=1)
    #: Per requested model name.
    thresholds: dict[str, float] = Field(default_factory=dict)
    #: `local`: the embedding model shipped in the `semantic` extra (no network); any
    #: other value is a model name the gateway serves embeddings for.
    embedder: str = "local"


class CacheSettings(_Strict):
    exact: ExactCacheSettings = Field(default_factory=ExactCacheSettings)
    semantic: SemanticCacheSettings = Field(default_factory=SemanticCacheSettings)
    #: Who may be served an answer cached for someone else: anyone the policies let
    #: make the request (`none`), or only the same team, user or key.
    isolation: Literal["none", "team", "user", "key"] = "team"
    #: Replies larger than this are not cached.
    max_entry_bytes: int = Field(default=1_000_000, gt=0)
    #: How often a gateway process reads entries and invalidations other processes wrote.
    sync_s: float = Field(default=1.0, gt=0)


class MemorySettings(_Strict):
    #: Projects whose requests get their memory without asking (`x-aicp-memory: on`).
    projects: list[str] = Field(default_factory=list)
    #: At most this many entries, and this many tokens of them, go into a request.
    max_entries: int = Field(default=5, ge=1, le=50)
    max_tokens: int = Field(default=800, ge=50)
    #: How fast an entry's recency weight halves.
    half_life_days: float = Field(default=30.0, gt=0)


class CompressionSettings(_OptIn):
    steps: list[Step] = Field(default_factory=lambda: list(DEFAULT_STEPS))
    #: Context windows in tokens, by upstream model name; others get the default.
    context_tokens: dict[str, int] = Field(default_factory=dict)
    default_context_tokens: int = Field(default=128_000, ge=1024)
    #: Tokens kept free for the answer when trimming.
    reserve_output_tokens: int = Field(default=4096, ge=0)
    #: Repeated blocks shorter than this are left alone.
    min_block_chars: int = Field(default=200, ge=20)
    #: The model (name, alias or group) older turns are summarised through.
    summarise_with: str | None = None


class LearningSettings(_Strict):
    #: Weights of the learned strategy's utility.
    weights: dict[str, float] = Field(
        default_factory=lambda: {"success": 1.0, "quality": 0.5, "latency": 0.3, "cost": 0.3}
    )

    @field_validator("weights")
    @classmethod
    def _known_weights(cls, v: dict[str, float]) -> dict[str, float]:
        known = {"success", "quality", "latency", "cost"}
        unknown = sorted(set(v) - known)
        if unknown:
            raise ValueError(f"unknown weights {unknown}: use {sorted(known)}")
        if any(not 0 <= w < 1e6 for w in v.values()):
            raise ValueError("weights must be >= 0")
        return v

    #: Outcomes lose half their weight after this many seconds.
    half_life_s: float = Field(default=3600.0, gt=0)
    #: How often route memory is shared with the other processes through the database.
    sync_s: float = Field(default=2.0, gt=0)
