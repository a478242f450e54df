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

from collections.abc import Callable

from aicp.compress.forms import ASSISTANT, RESULT, SYSTEM, USER
from aicp.compress.work import Work
from aicp.protocol.jsonutil import Json

SUMMARY_HEADER = "[aicp: summary of {n} earlier messages, removed to fit the context window]"


#: The indices of messages dropped together (a plain list: there are many of them).
Unit = list[int]


def units(work: Work) -> list[Unit]:
    found: list[Unit] = []
    for i, kind in enumerate(work.kinds):
        if kind == SYSTEM:
            continue
        if kind == RESULT and found:
            found[-1].append(i)
        else:
            found.append([i])
    return found


def _users(work: Work, found: list[Unit]) -> list[bool]:
    """Whether each unit starts a turn."""
    kinds = work.kinds
    return [kinds[unit[0]] == USER for unit in found]


def _pinned(users: list[bool]) -> tuple[int, set[int]]:
    """The last user unit (-1 if none) and the units kept whatever the budget."""
    last_user = max((k for k, user in enumerate(users) if user), default=-1)
    return last_user, {k for k in (last_user, len(users) - 1) if k >= 0}


def plan(work: Work, budget: int) -> list[Unit]:
    """The units to drop, oldest first, for the request to fit `budget` tokens."""
    total = work.total()
    if total <= budget:
        return []
    found = units(work)
    if not found:
        return []
    users = _users(work, found)
    last_user, pinned = _pinned(users)
    dropped: list[Unit] = []
    for k, unit in enumerate(found):
        if k in pinned:
            continue
        starts_right = users[k] or k > last_user or last_user < 0
        if total <= budget and starts_right:
            break
        dropped.append(unit)
        total -= sum(work.tokens[i] for i in unit)
    return dropped


#: Prepares message `i` before it is counted (for the steps before `trim`), called
#: newest first; False when the message goes (a repeat).
Visit = Callable[[int], bool]


def fit(work: Work, budget: int, visit: Visit) -> int:
    """`plan` and `apply` for work whose counts are `pending`; the messages trimmed.

    The same units go as `plan` would drop on exact counts, found the other way
    round: what is always kept, then units newest first, each visited and counted
    exactly, until one does not fit. The units older than that one are never
    visited nor tokenized: they go without costing anything.
    """
    found = units(work)
    users = _users(work, found)
    last_user, pinned = _pinned(users)
    exact: dict[int, int] = {}
    gone: set[int] = set()

    def counted(indices: list[int]) -> int:
        n = 0
        for i in reversed(indices):
            if visit(i):
                exact[i] = tokens = work.exact(i)
                n += tokens
            else:
                gone.add(i)
        return n

    total = work.fixed + counted([i for i, kind in enumerate(work.kinds) if kind == SYSTEM])
    # The last user turn stays, and the units after it are visited before it is.
    newest = range(len(found) - 1, min(pinned, default=0) - 1, -1)
    sizes = {k: counted(found[k]) for k in newest}
    total += sum(sizes[k] for k in pinned)
    first = 0  # the oldest unit that fits with all the newer ones
    for k in range(len(found) - 1, -1, -1):
        if k in pinned:
            continue
        tokens = sizes[k] if k in sizes else counted(found[k])
        if total + tokens > budget:
            first = k + 1
            break
        total += tokens

    keep = first  # as in `plan`, a kept history starts with a user turn
    while 0 < keep < len(found) and (
        keep in pinned or not (users[keep] or keep > last_user or last_user < 0)
    ):
        keep += 1
    trimmed = {i for k in range(keep) if k not in pinned for i in found[k]} - gone
    work.settle(exact, trimmed | gone)
    return len(trimmed)


def dropped_messages(work: Work, dropped: list[Unit]) -> list[Json]:
    return [work.messages[i] for unit in dropped for i in unit]


def apply(work: Work, dropped: list[Unit], summary: str | None = None) -> None:
    """Drop the units; with `summary`, put it before the first user message kept."""
    gone = {i for unit in dropped for i in unit}
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
