"""A request being compressed: its messages, each one's tokens, and the fixed part.

Every message is counted once when the work starts; a step that rewrites or
drops a message updates that message's count only, so the total is always known
without counting the request again.

With counting "auto" and a request whose bound is over the budget, the messages'
counts start as estimates and stay `pending`: trimming counts exactly the messages
it keeps, newest first, and settles the rest by dropping them, so turns that are
dropped anyway are never tokenized. Totals taken while pending (a `Tally`) are then
read at the kept messages' exact tokens per estimated token (`scale`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from itertools import chain

from aicp.compress.forms import REPLY_PRIMING, Form, Path, read, replaced
from aicp.compress.tokens import Counting
from aicp.protocol.jsonutil import Json

#: A message's strings to count and its estimated extra tokens (`Form.counted`).
Counted = tuple[list[str], int]


@dataclass(frozen=True, slots=True)
class Tally:
    """The work's total at one moment, split as `Work.tokens_of` needs it."""

    fixed: int
    messages: int
    estimated: bool


@dataclass(slots=True)
class Work:
    form: Form
    counting: Counting
    #: The body without its messages: a shallow copy, which steps replace keys of.
    top: Json
    messages: list[Json]
    kinds: list[str]
    counted: list[Counted]
    tokens: list[int]
    #: Tokens outside `messages`: tool definitions, Anthropic's system prompt, priming.
    fixed: int
    #: Whether counts are characters / 4 estimates rather than tokenizer counts.
    estimated: bool
    #: The estimates wait for `settle` to become exact counts (`fixed` is exact already).
    pending: bool = False
    #: Exact over estimated tokens of the messages kept by `settle` (1.0 until then).
    scale: float = 1.0

    @classmethod
    def start(
        cls,
        body: Json,
        form: Form,
        counting: Counting,
        *,
        auto: bool,
        budget: int | None,
        pending: bool = False,
    ) -> Work:
        """Count the body's messages; with `auto`, estimate when the bound fits the budget,
        and when it does not but `pending` (trimming will settle), estimate them too."""
        messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
        top = {k: v for k, v in body.items() if k != "messages"}
        counted = [form.counted(m) for m in messages]
        kinds = [form.kind(m) for m in messages]
        work = cls(form, counting, top, messages, kinds, counted, [], 0, False)
        if auto:
            work.tokens = counting.estimate_each(counted)
            fits = budget is None or (not work._surely_over(budget) and work.bound() <= budget)
            work.pending = not fits and pending
            work.estimated = fits or work.pending
        if not work.estimated:
            count = counting.count_all
            work.tokens = [extra + count(texts) for texts, extra in counted]
        work.fixed = work.fixed_tokens(work._fixed_counter)
        return work

    def bound(self) -> int:
        """An upper bound on the total, without tokenizing."""
        texts = list(chain.from_iterable(texts for texts, _ in self.counted))
        extra = sum(extra for _, extra in self.counted)
        return self.fixed_tokens(self.counting.bound) + extra + self.counting.bound_all(texts)

    def _surely_over(self, budget: int) -> bool:
        """Whether the estimates alone show the bound over `budget`: an estimate is at
        most a quarter of its characters (plus one, rounded up), and characters are at
        most the bytes the bound counts."""
        extra = sum(extra for _, extra in self.counted)
        return extra + 4 * (sum(self.tokens) - extra - len(self.tokens)) > budget

    @property
    def _fixed_counter(self) -> Callable[[str], int]:
        # Pending work counts the fixed part exactly: it is always kept.
        final = self.estimated and not self.pending
        return self.counting.estimate if final else self.counting.count

    def exact(self, i: int) -> int:
        """Message `i`'s tokenizer count, whatever `tokens[i]` holds."""
        texts, extra = self.counted[i]
        return extra + self.counting.count_all(texts)

    def fixed_tokens(self, count: Callable[[str], int]) -> int:
        texts, extra = self.form.tools_text(self.top, self.counting.encoding.name)
        system = [read(self.top, p) for p in self.form.system_paths(self.top)]
        overhead = REPLY_PRIMING + (3 if system else 0)
        return overhead + extra + sum(count(t) for t in (*texts, *system))

    def total(self) -> int:
        return self.fixed + sum(self.tokens)

    def tally(self) -> Tally:
        return Tally(self.fixed, sum(self.tokens), self.estimated)

    def tokens_of(self, tally: Tally) -> int:
        """A total taken earlier, in the counts the work has now."""
        if not tally.estimated or self.estimated:
            return tally.fixed + tally.messages
        return tally.fixed + round(tally.messages * self.scale)

    def set_message(self, i: int, message: Json) -> None:
        self.messages[i] = message
        self.kinds[i] = self.form.kind(message)
        self.counted[i] = texts, extra = self.form.counted(message)
        if self.estimated:
            self.tokens[i] = extra + self.counting.estimate_all(texts)
        else:
            self.tokens[i] = extra + self.counting.count_all(texts)

    def set_top(self, path: Path, value: str) -> None:
        self.top = replaced(self.top, path, value)
        self.fixed = self.fixed_tokens(self._fixed_counter)

    def settle(self, exact: dict[int, int], gone: Collection[int]) -> None:
        """End `pending`: drop `gone`; every other message's exact count is in `exact`."""
        kept = [i for i in range(len(self.messages)) if i not in gone]
        estimated = sum(self.tokens[i] for i in kept)
        self.tokens = [exact[i] for i in kept]
        counted = sum(self.tokens)
        self.scale = counted / estimated if estimated else 1.0
        self.estimated = self.pending = False
        self._keep(kept)

    def drop(self, indices: Collection[int]) -> None:
        kept = [i for i in range(len(self.messages)) if i not in indices]
        self.tokens = [self.tokens[i] for i in kept]
        self._keep(kept)

    def _keep(self, kept: list[int]) -> None:
        """Keep the messages at `kept` (the counts are the caller's to keep)."""
        self.messages = [self.messages[i] for i in kept]
        self.kinds = [self.kinds[i] for i in kept]
        self.counted = [self.counted[i] for i in kept]

    def body(self) -> Json:
        return {**self.top, "messages": self.messages}
