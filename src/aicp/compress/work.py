"""A request being compressed: its messages, each one's tokens, and the fixed part.

Every message is counted once when the work starts; a step that rewrites or
drops a message updates that message's count only, so the total is always known
without counting the request again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aicp.compress.forms import REPLY_PRIMING, Form, Path, read, replaced
from aicp.compress.tokens import Counting
from aicp.protocol.jsonutil import Json


@dataclass(slots=True)
class Work:
    form: Form
    counting: Counting
    #: The body without its messages: a shallow copy, which steps replace keys of.
    top: Json
    messages: list[Json]
    kinds: list[str]
    tokens: list[int]
    #: Tokens outside `messages`: tool definitions, Anthropic's system prompt, priming.
    fixed: int
    #: Whether counts are characters / 4 estimates rather than tokenizer counts.
    estimated: bool

    @classmethod
    def start(
        cls, body: Json, form: Form, counting: Counting, *, auto: bool, budget: int | None
    ) -> Work:
        """Count the body's messages; with `auto`, estimate when the bound fits the budget."""
        messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
        top = {k: v for k, v in body.items() if k != "messages"}
        counted = [form.counted(m) for m in messages]
        work = cls(form, counting, top, messages, [form.kind(m) for m in messages], [], 0, False)
        if auto:
            bound = counting.bound
            total = work.fixed_tokens(bound) + sum(
                extra + bound_all(texts, bound) for texts, extra in counted
            )
            work.estimated = budget is None or total <= budget
        if work.estimated:
            estimate = counting.estimate_all
            work.tokens = [extra + estimate(texts) for texts, extra in counted]
        else:
            count = counting.count
            work.tokens = [extra + sum(map(count, texts)) for texts, extra in counted]
        work.fixed = work.fixed_tokens(work._counter)
        return work

    @property
    def _counter(self) -> Callable[[str], int]:
        return self.counting.estimate if self.estimated else self.counting.count

    def count(self, message: Json) -> int:
        texts, extra = self.form.counted(message)
        if self.estimated:
            return extra + self.counting.estimate_all(texts)
        return extra + sum(map(self.counting.count, texts))

    def fixed_tokens(self, count: Callable[[str], int]) -> int:
        texts, extra = self.form.tools_text(self.top, self.counting.encoding.name)
        system = [read(self.top, p) for p in self.form.system_paths(self.top)]
        overhead = REPLY_PRIMING + (3 if system else 0)
        return overhead + extra + sum(count(t) for t in (*texts, *system))

    def total(self) -> int:
        return self.fixed + sum(self.tokens)

    def set_message(self, i: int, message: Json) -> None:
        self.messages[i] = message
        self.kinds[i] = self.form.kind(message)
        self.tokens[i] = self.count(message)

    def set_top(self, path: Path, value: str) -> None:
        self.top = replaced(self.top, path, value)
        self.fixed = self.fixed_tokens(self._counter)

    def drop(self, indices: set[int]) -> None:
        keep = [i for i in range(len(self.messages)) if i not in indices]
        self.messages = [self.messages[i] for i in keep]
        self.kinds = [self.kinds[i] for i in keep]
        self.tokens = [self.tokens[i] for i in keep]

    def body(self) -> Json:
        return {**self.top, "messages": self.messages}


def bound_all(texts: list[str], bound: Callable[[str], int]) -> int:
    """`bound` summed over `texts`."""
    return sum(map(bound, texts))
