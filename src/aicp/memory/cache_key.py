"""The exact-cache key and the semantic content of a chat request.

The key is SHA-256 over a canonical form of everything that changes the
output: protocol, operation, the upstream model and the body, less the fields
that only change delivery or bookkeeping (`IGNORED`, and any `aicp_*` key).
Everything else counts, so an output-changing field we have never heard of
splits the key (a miss) instead of merging two different requests (a wrong
answer). Key order is canonical (orjson, sorted keys) and an integral float
at the top level is written as an integer, so `temperature: 1.0` and `1`
agree; `max_tokens` is the older name of OpenAI's `max_completion_tokens`.
Equal JSON hashes equally; equivalent JSON (a string against a one-part
content list, a default written out) does not, which costs a miss, never a
wrong hit.

The semantic side (`semantic_request`) splits a request in two: the *text*
of the last user turn, which is embedded and compared by similarity, and a
*context fingerprint* of everything else (system prompt, earlier turns,
tools, parameters, model), which must match exactly for a semantic hit.
Earlier turns go into the fingerprint rather than into the embedded text:
the same question in another conversation is another question, and a hash
mixed into the text would only blur its embedding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

#: Written into every canonical form: bump it when the form changes.
VERSION = 1

#: Top-level fields that never change the generated output.
IGNORED = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        # OpenAI bookkeeping: stored completions, prompt-cache routing, abuse tracking.
        "store",
        "prompt_cache_key",
        "safety_identifier",
    }
)

#: Older spellings of a parameter, per protocol, renamed before hashing.
ALIASES: Mapping[str, Mapping[str, str]] = {
    "openai": {"max_tokens": "max_completion_tokens"},
}

#: Where each protocol keeps the conversation (the system prompt counts as context).
CONVERSATION = {"openai": "messages", "anthropic": "messages", "openai-responses": "input"}

#: Content part types that are text, across protocols.
TEXT_PARTS = frozenset({"text", "input_text"})

#: Semantic caching stops here: a long prompt that differs in one sentence embeds
#: almost like the original, and no guard reads a whole document.
MAX_SEMANTIC_CHARS = 1000


@dataclass(frozen=True, slots=True)
class SemanticRequest:
    """What the semantic cache compares: `text` by similarity, `context` exactly."""

    text: str
    context: str


def exact_key(protocol: str, operation: str, model: str, body: Mapping[str, object]) -> str:
    """Hex SHA-256 of the request as far as it decides the output.

    `model` is the upstream model name, which replaces the body's `model` (an
    alias): two aliases of one deployment share entries, two deployments do not.
    """
    form = [VERSION, protocol, operation, model, _output_fields(protocol, body)]
    return hashlib.sha256(orjson.dumps(form, option=orjson.OPT_SORT_KEYS)).hexdigest()


def semantic_request(
    protocol: str,
    operation: str,
    model: str,
    body: Mapping[str, object],
    *,
    max_chars: int = MAX_SEMANTIC_CHARS,
) -> SemanticRequest | None:
    """The last user turn's text and the fingerprint of the rest, or None when the
    request is not one for the semantic cache: not a chat, no conversation, a last
    turn that is not the user's, or one with anything but text (images, tool
    results), or longer than `max_chars`."""
    field = CONVERSATION.get(protocol)
    if operation != "chat" or field is None:
        return None
    turns = body.get(field)
    if isinstance(turns, str):  # Responses: `input` may be one string, the user's
        turns = [{"role": "user", "content": turns}]
    if not isinstance(turns, list) or not turns:
        return None
    last = turns[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    text = _text_of(last.get("content"))
    if not text or len(text) > max_chars:
        return None
    fields = _output_fields(protocol, body)
    # The last turn without its content still counts (its role, an OpenAI `name`).
    fields[field] = [*turns[:-1], {k: v for k, v in last.items() if k != "content"}]
    form = [VERSION, "context", protocol, operation, model, fields]
    context = hashlib.sha256(orjson.dumps(form, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return SemanticRequest(text, context)


def _output_fields(protocol: str, body: Mapping[str, object]) -> dict[str, object]:
    aliases = ALIASES.get(protocol, {})
    fields: dict[str, object] = {}
    for name, value in body.items():
        if name in IGNORED or name == "model" or name.startswith("aicp_"):
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        alias = aliases.get(name)
        fields[name if alias is None or alias in body else alias] = value
    return fields


def _text_of(content: object) -> str | None:
    """A turn's text: a string, or a list of text parts only."""
    if isinstance(content, str):
        return content.strip()
    if not isinstance(content, list):
        return None
    texts: list[str] = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
            return None
        text = part.get("text")
        if not isinstance(text, str):
            return None
        texts.append(text)
    return "\n".join(texts).strip()
