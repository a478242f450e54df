"""What a compressed request must still be: valid for its provider, and holding the facts.

The facts are looked for in the text a model would read (and the fake upstream's
echo would return): every prose slot of the body, found by `aicp.protocol.text`,
which walks bodies independently of the compress package.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aicp.protocol.jsonutil import Json
from aicp.protocol.text import joined, request_slots


def missing_facts(body: Json, protocol: str, needs: Iterable[str]) -> list[str]:
    text = joined(request_slots(protocol, "chat", body))
    return [fact for fact in needs if fact not in text]


def problems(body: Json, protocol: str) -> list[str]:
    """Why the provider would reject the body's message sequence (empty when it would not)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["no messages"]
    if protocol == "anthropic":
        return _anthropic(messages)
    return _openai(messages)


def _openai(messages: list[Json]) -> list[str]:
    found: list[str] = []
    waiting: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in waiting:
                found.append(f"message {i}: tool result {call_id} answers no pending call")
            waiting.discard(str(call_id))
            continue
        if waiting:
            found.append(f"message {i}: calls {sorted(waiting)} have no results")
            waiting = set()
        if role == "assistant":
            waiting = {str(c.get("id")) for c in message.get("tool_calls") or ()}
    if waiting:
        found.append(f"calls {sorted(waiting)} have no results")
    return found


def _anthropic(messages: list[Json]) -> list[str]:
    found: list[str] = []
    if messages[0].get("role") != "user":
        found.append("the first message is not a user message")
    pending: set[str] = set()
    for i, message in enumerate(messages):
        blocks = _blocks(message.get("content"))
        if message.get("role") == "assistant":
            if pending:
                found.append(f"message {i}: tool uses {sorted(pending)} have no results")
            pending = {str(b.get("id")) for b in blocks if b.get("type") == "tool_use"}
            continue
        results = {str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"}
        if results - pending:
            found.append(f"message {i}: results {sorted(results - pending)} answer no tool use")
        if pending - results:
            found.append(f"message {i}: tool uses {sorted(pending - results)} have no results")
        pending = set()
    return found


def _blocks(content: Any) -> list[Json]:
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
