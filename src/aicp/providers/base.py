"""The one protocol every provider implements, and the values it trades in.

A provider receives a `Call` whose body is in the *ingress* protocol (what the
client sent: "openai", "openai-responses" or "anthropic"). When that equals the provider's native
protocol, the provider sends the body through with only the model rewritten
and returns the upstream bytes untouched (`Reply.protocol == call.ingress`).
Otherwise it translates from the canonical form (`call.openai()`: OpenAI chat
with extensions for thinking blocks and cache usage) and returns canonical
OpenAI-shaped data, which the API layer encodes into the client's protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from aicp.protocol.jsonutil import Json

#: Wire protocols spoken at ingress and by providers.
OPENAI = "openai"
ANTHROPIC = "anthropic"
#: OpenAI's Responses API (`POST /v1/responses`): native to OpenAI and Azure only.
RESPONSES = "openai-responses"


@dataclass(slots=True)
class Timeouts:
    connect: float
    first_byte: float
    idle: float


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Canonical:
    """A request body in canonical (OpenAI chat) form, translated on first use.

    Execute makes one per request and hands it to every attempt's `Call`, so a
    retry or a fallback does not translate the body again; a request that only
    goes to pass-through providers never translates it at all.
    """

    __slots__ = ("_body", "_ingress", "_value")

    def __init__(self, ingress: str, body: Json) -> None:
        self._ingress = ingress
        self._body = body
        self._value: Json | None = None

    def get(self) -> Json:
        if self._value is None:
            if self._ingress == ANTHROPIC:
                from aicp.protocol.anthropic import messages_to_chat

                self._value = messages_to_chat(self._body)
            elif self._ingress == RESPONSES:
                from aicp.protocol.responses import responses_to_chat

                self._value = responses_to_chat(self._body)
            else:
                self._value = self._body
        return self._value


@dataclass(slots=True)
class Call:
    """One attempt's request as a provider sees it."""

    ingress: str
    operation: str  # "chat" | "embeddings" | "count_tokens"
    body: Json
    model: str  # the upstream model name
    headers: dict[str, str]  # forwarded client headers (anthropic-*, traceparent, ...)
    timeouts: Timeouts
    stream: bool = False
    #: Shared by the attempts of one request; made here when a Call stands alone.
    canonical: Canonical | None = field(default=None, repr=False)

    def openai(self) -> Json:
        """The body in canonical (OpenAI chat) form, translated once per request."""
        if self.canonical is None:
            self.canonical = Canonical(self.ingress, self.body)
        return self.canonical.get()

    def passthrough_body(self) -> Json:
        """The client's body with only the model rewritten."""
        body = dict(self.body)
        body["model"] = self.model
        return body


@dataclass(slots=True)
class Reply:
    """A complete (non-streamed) answer.

    `raw` is set when the upstream bytes go back as they came (pass-through);
    `data` is the parsed body (always set: usage and receipts need it).
    """

    protocol: str
    data: Json
    usage: Usage
    raw: bytes | None = None


class Stream(Protocol):
    """An opened upstream stream: the status was checked before it was returned.

    Iterating yields `bytes` already encoded in `protocol` (pass-through) or
    canonical OpenAI `chat.completion.chunk` dicts (`protocol == "openai"`
    and the ingress differs, or a translating provider).
    """

    protocol: str
    passthrough: bool
    usage: Usage

    def __aiter__(self) -> AsyncIterator[bytes | Json]: ...

    async def aclose(self) -> None: ...


class Provider(Protocol):
    name: str
    #: The wire protocol the upstream speaks natively.
    native: str
    #: Local providers are the only ones allowed in offline mode.
    local: bool

    async def complete(self, call: Call) -> Reply: ...

    async def stream(self, call: Call) -> Stream: ...

    async def embed(self, call: Call) -> Reply: ...

    async def count_tokens(self, call: Call) -> int | None:
        """Input tokens of an Anthropic-shaped body, or None when the upstream cannot say."""
        ...

    async def list_models(self) -> list[str]: ...

    async def aclose(self) -> None: ...


def usage_from_openai(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    details = data.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
        cache_creation_tokens=int(data.get("cache_creation_input_tokens") or 0),
    )
