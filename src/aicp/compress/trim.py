"""The `trim` step: drop the oldest turns until the request fits the token budget.

System prompts and tool definitions are never dropped. Messages are dropped in
units that keep a request valid: a user message alone, or an assistant message
with the tool results that answer it (OpenAI `tool` messages after `tool_calls`,
Anthropic user messages of `tool_result` blocks after `tool_use`). Units go oldest
first, and dropping continues past the budget until the conversation starts with
a user turn again (Anthropic rejects one that starts with the assistant; for OpenAI
it keeps a question with its answers). The last user message and the last unit
are kept whatever the budget: if they alone do not fit, the result says so.

With a summariser (the `summarise` step), the dropped messages are replaced by
their summary, put at the start of the first user message that is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from aicp.compress.forms import ASSISTANT, RESULT, SYSTEM, USER
from aicp.compress.work import Work
from aicp.protocol.jsonutil import Json

SUMMARY_HEADER = "[aicp: summary of {n} earlier messages, removed to fit the context window]"


@dataclass(slots=True)
class Unit:
    """Messages dropped together, by index; `user` when it starts a turn."""

    indices: list[int]
    user: bool


def units(work: Work) -> list[Unit]:
    found: list[Unit] = []
    for i, kind in enumerate(work.kinds):
        if kind == SYSTEM:
            continue
        if kind == RESULT and found:
            found[-1].indices.append(i)
        else:
            found.append(Unit([i], kind == USER))
    return found


def plan(work: Work, budget: int) -> list[Unit]:
    """The units to drop, oldest first, for the request to fit `budget` tokens."""
    total = work.total()
    if total <= budget:
        return []
    found = units(work)
    if not found:
        return []
    last_user = max((k for k, u in enumerate(found) if u.user), default=-1)
    pinned = {last_user, len(found) - 1}
    dropped: list[Unit] = []
    for k, unit in enumerate(found):
        if k in pinned:
            continue
        starts_right = unit.user or k > last_user or last_user < 0
        if total <= budget and starts_right:
            break
        dropped.append(unit)
        total -= sum(work.tokens[i] for i in unit.indices)
    return dropped


def dropped_messages(work: Work, dropped: list[Unit]) -> list[Json]:
    return [work.messages[i] for unit in dropped for i in unit.indices]


def apply(work: Work, dropped: list[Unit], summary: str | None = None) -> None:
    """Drop the units; with `summary`, put it before the first user message kept."""
    gone = {i for unit in dropped for i in unit.indices}
    work.drop(gone)
    if summary is None:
        return
    for i, kind in enumerate(work.kinds):
        if kind == USER:
            work.set_message(i, work.form.with_prefix(work.messages[i], summary))
            return
        if kind == ASSISTANT:  # no user message left before the assistant's: none to carry it
            return


def summary_text(summary: str, n: int) -> str:
    return f"{SUMMARY_HEADER.format(n=n)}\n{summary.strip()}"
