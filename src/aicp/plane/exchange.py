"""The Exchange: one request's state as it moves through the stages."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aicp.errors import AicpError
from aicp.protocol.jsonutil import Json
from aicp.providers.base import Canonical, Reply, Stream, Usage

if TYPE_CHECKING:
    from aicp.accounting.budget_stages import Reservation
    from aicp.accounting.ratelimit_stages import TokenHold
    from aicp.guardrails.redact import Placeholders
    from aicp.policy.model import Decision
    from aicp.protocol.text import Slot
    from aicp.routing.router import Deployment, Route

Mode = Literal["live", "simulate", "offline"]

#: Sensitivities whose text the gateway never sends out on its own account.
STAYS_HOME = frozenset({"confidential", "restricted"})


@dataclass(slots=True)
class Principal:
    """Who is asking: a virtual key and what it belongs to, or the master key."""

    key_id: str | None = None
    #: The key's display form (e.g. "sk-aicp-Ab3d...x9Q"), never the key itself.
    display: str | None = None
    name: str | None = None
    user_id: str | None = None
    service_account_id: str | None = None
    team_id: str | None = None
    project_id: str | None = None
    #: Model names, aliases and groups the key may use; empty means all.
    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    trust_level: int = 1
    is_admin: bool = False
    can_force_routes: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    #: RPM/TPM limits of the key's user and team (their metadata's "rpm" and "tpm").
    user_rpm: int | None = None
    user_tpm: int | None = None
    team_rpm: int | None = None
    team_tpm: int | None = None
    #: The owning user's role: "admin", "team_admin" (of `team_id`) or "member".
    role: str = "member"
    #: The receipt's section for this principal, made on first use (receipts/build.py).
    receipt_section: dict[str, Any] | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class Attempt:
    provider: str
    deployment: str
    model: str
    status: int | None = None
    error: str | None = None
    latency_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "deployment": self.deployment,
            "model": self.model,
            "status": self.status,
            "error": self.error,
            "latency_ms": round(self.latency_ms, 3),
        }


def new_receipt_id() -> str:
    """Unique and time-ordered (milliseconds first), so ids sort by time and index well."""
    return f"rcpt_{time.time_ns() // 1_000_000:012x}{os.urandom(8).hex()}"


@dataclass(slots=True)
class Exchange:
    id: str
    protocol: str  # ingress protocol: "openai" | "openai-responses" | "anthropic"
    operation: str  # "chat" | "embeddings" | "count_tokens"
    body: Json
    headers: dict[str, str]  # the client's headers that stages may read, lower-case names
    stream: bool = False
    mode: Mode = "live"
    started: float = field(default_factory=time.perf_counter)
    principal: Principal = field(default_factory=Principal)
    labels: dict[str, str] = field(default_factory=dict)
    route: Route | None = None
    attempts: list[Attempt] = field(default_factory=list)
    reply: Reply | None = None
    upstream: Stream | None = None
    #: The iterator over `upstream` and its first item, pulled before the response
    #: was committed to the client (so a failure up to there can still fall back).
    chunks: AsyncIterator[bytes | Json] | None = None
    first: bytes | Json | None = None
    #: The body in canonical form, shared by all attempts (made by execute, after
    #: every stage that may rewrite the body).
    canonical: Canonical | None = None
    #: The deployment that answered; for streams it hears the verdict at the end.
    served: Deployment | None = None
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    #: What the budget stage reserved; the settle stage settles or releases it.
    reservation: Reservation | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: Headers every response carries, success or error (rate-limit state, ...).
    response_headers: dict[str, str] = field(default_factory=dict)
    #: The tokens the limits stage charged; the meter stage corrects them.
    token_hold: TokenHold | None = None
    #: Bytes of stream body sent to the client (bills an abandoned stream).
    streamed_bytes: int = 0
    #: Set by the gateway when the client went away before a stream ended.
    abandoned: bool = False
    #: The error the client was given, when the request failed (response stages see it).
    error: AicpError | None = None
    #: What each stage decided, in order: (stage name, decision).
    trace: list[tuple[str, Any]] = field(default_factory=list)
    #: The receipt's id, sent as `x-aicp-receipt-id` on every response.
    receipt_id: str = field(default_factory=new_receipt_id)
    #: UTC epoch seconds when the request arrived.
    wall_start: float = field(default_factory=time.time)
    #: An in-process caller's key id to authenticate as (api/inprocess.py); never a header.
    on_behalf_of: str | None = None
    #: The request body as the client sent it (hashed into the receipt, kept by policy).
    raw: bytes = b""
    #: SHA-256 of the response body the client got (a stream's bytes, all of them).
    response_hash: str | None = None
    #: The response body, when bodies are kept (receipts.bodies).
    response_body: bytes | None = None
    #: perf_counter when the first body byte of a stream went to the client.
    first_byte_at: float | None = None
    #: Each stage that ran: (name, start, end) in perf_counter seconds.
    stage_times: list[tuple[str, float, float]] = field(default_factory=list)
    #: Set by the record stage: resolves when the receipt is committed.
    durable: Awaitable[int] | None = None
    #: HTTP status the client was given.
    status: int = 200
    #: The classify stage's verdicts, which policies read (docs/guardrails.md).
    task_class: str = "general"
    sensitivity: str = "internal"
    trust: int = 1
    #: A latency SLA the client asked for (`x-aicp-latency-sla-ms`), 0 for none.
    latency_sla_ms: int = 0
    #: The request's prose, found once (protocol/text.py) and shared by the stages.
    slots: list[Slot] | None = None
    #: Detector names and finding kinds the input guard found ("secrets", "email", ...).
    findings: set[str] = field(default_factory=set)
    #: The input guard's findings with their actions (guardrails/stages.py `Hit`s).
    hits: list[Any] = field(default_factory=list)
    #: Slot texts as the client sent them, kept when a slot is redacted.
    originals: dict[int, str] = field(default_factory=dict)
    #: Originals of what the input guard redacted, restored in the response.
    placeholders: Placeholders | None = None
    #: The policy stage's decision; the route stage keeps the routes it allows.
    decision: Decision | None = None
    #: Local routes only (offline mode, globally or for this request; also in a simulation).
    offline: bool = False
    #: Policy ids an admin bypassed for this request (`x-aicp-policy-bypass`).
    bypass: frozenset[str] = frozenset()
    #: The recall stage: the exact-cache key (when the cache applies), whether the answer
    #: may be written to the cache, and the entry that answered (a hit).
    cache_key: str | None = None
    cache_write: bool = False
    cached: Any = None
    #: The semantic cache's view of the request (memory/cache_key.py), when it applies.
    semantic: Any = None
    #: The body before the compress stage changed it (what receipts keep), else None.
    uncompressed: Json | None = None

    @property
    def ttft_ms(self) -> float | None:
        if self.first_byte_at is None:
            return None
        return (self.first_byte_at - self.started) * 1000

    @property
    def may_leave(self) -> bool:
        """Whether the gateway may send this request's text to an external deployment of
        its own choosing (an embedder, a summariser): not offline, and neither
        `confidential` nor `restricted`."""
        return not self.offline and self.sensitivity not in STAYS_HOME

    @property
    def model(self) -> str:
        value = self.body.get("model")
        return value if isinstance(value, str) else ""

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000
