"""Token counts of text, exact for OpenAI's models and estimated for everyone else.

OpenAI's encodings ship offline in `bpe-openai` (cl100k_base and o200k_base, Rust,
tiktoken-compatible). It is imported on first use, never at import time: the import
alone takes about half a second, and a gateway with compression off must not pay it.

Other providers publish no offline tokenizer, so their counts are estimates:

- Claude: o200k_base x 1.20. Measured on Claude 3.5 Sonnet against GPT-4o, Claude
  needs about 16% more tokens for English prose, 21% for maths and 30% for Python,
  so the estimate is within about -8% (code) to +4% (prose) of the real count.
- Any other model (Gemini, Llama, Mistral, Qwen, ...): o200k_base x 1.10, a
  deliberate slight over-count (a budget trimmed a little early beats a request
  the provider rejects). `python -m aicp.compress.eval` prints how far cl100k_base,
  the base of Llama 3's vocabulary, sits from o200k_base on its conversations.
- Without bpe-openai installed (or with a build whose bindings we do not know):
  characters / 4 x the same factor, the rule of thumb OpenAI and Anthropic both
  document. Against o200k_base (the eval prints the table) it is within about 2% on
  English prompts and Python source, but counts 30-40% too few for JSON and logs,
  which have fewer characters per token.

Counts are remembered by `TokenCounter`, keyed by a hash of the text: a chat client
resends the whole history every turn, so with one counter for the app's lifetime
only the new messages are tokenized.
"""

from __future__ import annotations

import importlib
import math
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aicp.compress.memo import TextMemo

O200K = "o200k_base"
CL100K = "cl100k_base"

#: Model name prefixes of OpenAI's own models -> their encoding (longest prefix wins).
OPENAI_ENCODINGS: dict[str, str] = {
    "gpt-5": O200K,
    "gpt-4.5": O200K,
    "gpt-4.1": O200K,
    "gpt-4o": O200K,
    "chatgpt-4o": O200K,
    "gpt-oss": O200K,
    "o1": O200K,
    "o3": O200K,
    "o4": O200K,
    "codex-mini": O200K,
    "computer-use": O200K,
    "gpt-4": CL100K,
    "gpt-3.5": CL100K,
    "gpt-35": CL100K,
    "text-embedding-3": CL100K,
    "text-embedding-ada-002": CL100K,
}

#: Substrings of other providers' model names -> factor over o200k_base (first match).
ESTIMATE_FACTORS: dict[str, float] = {"claude": 1.20}
DEFAULT_FACTOR = 1.10

_BINDINGS = "bpe_openai._bindings"
#: Model names whose encoding a `TokenCounter` remembers.
_MODELS_KEPT = 1_024


@dataclass(frozen=True, slots=True)
class Encoding:
    """How one model's tokens are counted: a tokenizer, times a factor when estimated."""

    name: str
    factor: float

    @property
    def native(self) -> bool:
        """Whether this is the model's own tokenizer (so counts can be exact)."""
        return self.factor == 1.0

    @property
    def label(self) -> str:
        return self.name if self.native else f"{self.name} x{self.factor:.2f}"


def encoding_for_model(model: str) -> Encoding:
    """The encoding of a model name such as `gpt-4o`, `openai/gpt-4.1`, `ft:gpt-4o:org::id`."""
    name = model.lower().removeprefix("ft:").rsplit("/", 1)[-1]
    best = ""
    for prefix in OPENAI_ENCODINGS:
        if name.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    if best:
        return Encoding(OPENAI_ENCODINGS[best], 1.0)
    for needle, factor in ESTIMATE_FACTORS.items():
        if needle in name:
            return Encoding(O200K, factor)
    return Encoding(O200K, DEFAULT_FACTOR)


def _native_counter(name: str) -> Callable[[str], int] | None:
    """bpe-openai's Rust `count` for an encoding, or None without a usable bpe-openai.

    The Rust tokenizer is reached through the package's bindings module: the public
    `get_encoding` rebuilds Python rank tables on every call (about 30 ms) and caps
    inputs at 200,000 tokens, while the bindings keep one tokenizer per process and
    count without building a token list.
    """
    # Imported already (the usual case, with a counter made per request): no import
    # machinery, whose warnings filter alone costs microseconds.
    bindings = sys.modules.get(_BINDINGS)
    if bindings is None:
        try:
            # By name: bpe-openai ships no type information, and this keeps it optional.
            # Its import warns about a deprecated importlib.resources call of its own.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                bindings = importlib.import_module(_BINDINGS)
        except ImportError:
            return None
    factory = getattr(bindings, "tokenizer_for_encoding", None)
    if factory is None:
        return None
    count: Callable[[str], int] = factory(name).count
    return count


def utf8_len(text: str) -> int:
    """Bytes of `text` in UTF-8: an upper bound on its tokens in any byte-level BPE."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class Counting:
    """Counts for one request's model; made by `TokenCounter.bind`."""

    __slots__ = (
        "_count",
        "_factor",
        "_limit",
        "_memo",
        "_seen",
        "encoding",
        "exact",
        "label",
        "texts",
        "tokenizer",
    )

    def __init__(
        self,
        encoding: Encoding,
        count: Callable[[str], int] | None,
        memo: dict[tuple[int, int], int],
        limit: int,
        texts: TextMemo | None = None,
    ) -> None:
        self.encoding = encoding
        #: The app's memo of the steps' other per-text results (by default one that keeps
        #: nothing: this request only).
        self.texts = texts if texts is not None else TextMemo(max_bytes=0)
        self._count = count
        self._factor = encoding.factor
        self._memo = memo
        self._limit = limit
        self._seen: dict[str, int] = {}
        #: Whether a tokenizer is loaded, and whether it is the model's own.
        self.tokenizer = count is not None
        self.exact = count is not None and encoding.native
        if count is None:
            self.label = f"chars/4 x{encoding.factor:.2f} (bpe-openai not installed)"
        else:
            self.label = encoding.label

    def count(self, text: str) -> int:
        """Tokens of `text`, remembered (see `count_all`)."""
        return self.count_all((text,))

    def count_all(self, texts: Iterable[str]) -> int:
        """The texts' tokens added up (one call for a message's texts). A counter shared
        by requests remembers them by hash and length, least recently used first out."""
        if not self._limit:
            return self._count_once(texts)
        memo, limit = self._memo, self._limit
        total = 0
        for text in texts:
            if not text:
                continue
            key = (hash(text), len(text))
            found = memo.pop(key, None)
            if found is None:
                found = self._tokens(text)
                if len(memo) >= limit:
                    del memo[next(iter(memo))]
            memo[key] = found  # re-inserted on a hit too: the dict's order is least recent first
            total += found
        return total

    def _count_once(self, texts: Iterable[str]) -> int:
        """`count_all` remembering for this request only: by the texts themselves, which
        the request holds anyway (a role is counted once, not once a message)."""
        seen, count = self._seen, self._count
        if count is None or self._factor != 1.0:
            count = self._tokens
        total = 0
        for text in texts:
            found = seen.get(text)
            if found is None:
                try:
                    found = seen[text] = count(text) if text else 0
                except UnicodeEncodeError:  # as in `_tokens`, which counts it
                    found = seen[text] = self._tokens(text)
            total += found
        return total

    def estimate(self, text: str) -> int:
        """Characters / 4 times the factor: no tokenizer, for the cheap counting mode."""
        return math.ceil(len(text) / 4 * self._factor) if text else 0

    def estimate_all(self, texts: list[str]) -> int:
        """`estimate` of the texts' characters taken together (rounded once)."""
        chars = sum(map(len, texts))
        return math.ceil(chars / 4 * self._factor) if chars else 0

    def estimate_each(self, counted: Iterable[tuple[list[str], int]]) -> list[int]:
        """`estimate_all` of each message's texts plus its extra tokens, in one loop."""
        factor, ceil = self._factor / 4, math.ceil
        return [extra + ceil(sum(map(len, texts)) * factor) for texts, extra in counted]

    def bound(self, text: str) -> int:
        """An upper bound on `count(text)`, at the cost of a length check."""
        return math.ceil(utf8_len(text) * self._factor)

    def bound_all(self, texts: list[str]) -> int:
        """An upper bound on the texts' counts added up: one length check for them all."""
        size = utf8_len("".join(texts)) * self._factor
        # Each text's count is rounded up on its own when there is a factor.
        return math.ceil(size) + (len(texts) if self._factor != 1.0 else 0)

    def _tokens(self, text: str) -> int:
        if self._count is None:
            return self.estimate(text)
        try:
            n = self._count(text)
        except UnicodeEncodeError:  # a lone surrogate: counted as the replacement character
            n = self._count(text.encode("utf-8", "replace").decode("utf-8"))
        return n if self._factor == 1.0 else math.ceil(n * self._factor)


class TokenCounter:
    """Token counts for any model, remembering up to `cache_size` texts' counts.

    Make one for the app's lifetime (in its lifespan) and pass it to `compress`;
    `cache_size=0` remembers texts for one request only. It also holds the app's
    `TextMemo` (what the steps work out from a text besides its tokens). Use it from
    one thread (the gateway's event loop): its tables are plain dicts.
    """

    def __init__(self, *, cache_size: int = 65_536) -> None:
        self._cache_size = cache_size
        # Without a cache, a memo that keeps nothing (no entry fits its size).
        self.texts = TextMemo() if cache_size else TextMemo(max_bytes=0)
        self._memos: dict[str, dict[tuple[int, int], int]] = {}
        self._natives: dict[str, Callable[[str], int] | None] = {}
        self._encodings: dict[str, Encoding] = {}

    def bind(self, model: str) -> Counting:
        encoding = self._encodings.get(model)
        if encoding is None:
            encoding = encoding_for_model(model)
            if len(self._encodings) < _MODELS_KEPT:  # names may come from clients
                self._encodings[model] = encoding
        name = encoding.name
        if name not in self._natives:
            self._natives[name] = _native_counter(name)
        memo = self._memos.setdefault(encoding.label, {}) if self._cache_size else {}
        return Counting(encoding, self._natives[name], memo, self._cache_size, self.texts)

    def count(self, text: str, model: str) -> int:
        """Tokens of one text for `model` (see the module docstring for which are exact)."""
        return self.bind(model).count(text)
