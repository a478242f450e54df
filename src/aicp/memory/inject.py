"""Carrying memory into a request: the entries most relevant to its last question,
within a token budget, as one system text the provider reads before the
conversation (docs/memory.md).

A request opts in with `x-aicp-memory: on` and names its project with
`metadata.project` (or its key's project); the projects in `memory.projects`
get it without asking. The project's entries and
global memory are searched.
"""

from __future__ import annotations

from typing import Any

from aicp.memory.projects import MemoryEntry, MemoryStore
from aicp.plane.exchange import Exchange
from aicp.protocol.text import request_slots

HEADER = "You may use these notes from the project's memory (ids in brackets):"


def wanted(ex: Exchange, configured: list[str]) -> tuple[bool, str | None]:
    """Whether the request gets memory, and of which project (None: global only)."""
    meta = ex.body.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    project = meta.get("project") if isinstance(meta.get("project"), str) else None
    project = project or ex.principal.project_id
    asked = (ex.headers.get("x-aicp-memory") or "").strip().lower()
    if asked == "off":
        return False, None
    return asked == "on" or (project is not None and project in configured), project


def _question(ex: Exchange) -> str:
    slots = ex.slots if ex.slots is not None else request_slots(ex.protocol, ex.operation, ex.body)
    return " ".join(s.text for s in slots[-3:])


def _block(entries: list[MemoryEntry]) -> str:
    lines = [HEADER]
    for e in entries:
        lines.append(f"[{e.id} v{e.version}] ({e.kind}) {e.title}: {e.text}")
    return "\n".join(lines)


def _add_system(ex: Exchange, text: str) -> None:
    body = ex.body
    if ex.protocol == "anthropic":
        system = body.get("system")
        if isinstance(system, list):
            body["system"] = [*system, {"type": "text", "text": text}]
        else:
            body["system"] = f"{system}\n\n{text}" if system else text
    elif ex.protocol == "openai-responses":
        instructions = body.get("instructions")
        body["instructions"] = f"{instructions}\n\n{text}" if instructions else text
    else:
        messages = body.get("messages")
        if isinstance(messages, list):
            at = 0
            while (
                at < len(messages)
                and isinstance(messages[at], dict)
                and messages[at].get("role") in ("system", "developer")
            ):
                at += 1
            messages.insert(at, {"role": "system", "content": text})


async def add_memory(
    ex: Exchange, store: MemoryStore, project: str | None, max_entries: int, max_tokens: int
) -> dict[str, Any] | None:
    """Adds the best entries to `ex.body`; the receipt's record of what was added."""
    found = await store.search(_question(ex), projects={project, None}, limit=max_entries)
    chosen: list[MemoryEntry] = []
    budget = max_tokens * 4  # characters: about four to a token
    used = len(HEADER)
    for entry, _score in found:
        size = len(entry.title) + len(entry.text) + 40
        if used + size > budget:
            continue
        chosen.append(entry)
        used += size
    if not chosen:
        return {"project": project, "entries": []}
    _add_system(ex, _block(chosen))
    return {
        "project": project,
        "entries": [f"{e.id}@{e.version}" for e in chosen],
        "tokens": used // 4,
    }
