"""Embedders: text to L2-normalised float32 rows, behind one small protocol.

- `WordLlamaEmbedder`: static token embeddings, averaged. The weights and the
  tokenizer ship inside the `wordllama` wheel and are read from the installed
  package's folder with safetensors and tokenizers; wordllama itself is never
  imported (its loader can fall back to a hub download), so nothing touches
  the network. About 40 µs for a 30-word question.
- `RouteEmbedder`: whatever async `embed_texts` the caller gives, e.g. a call
  to a configured `/v1/embeddings` deployment.

numpy, safetensors and tokenizers are imported when an embedder is created,
not with this module: without the `semantic` extra the gateway still starts.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from aicp.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tokenizers import Tokenizer

    Matrix = npt.NDArray[np.float32]

#: The extra that brings numpy and wordllama (pyproject `optional-dependencies`).
EXTRA = "semantic"

WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
TENSOR = "embedding.weight"
WORD_START = "\u2581"  # sentencepiece's mark of a token that begins a word

EmbedTexts = Callable[[list[str]], Awaitable[list[list[float]]]]


class Embedder(Protocol):
    """What the semantic cache calls: rows of unit length, one per text."""

    @property
    def dims(self) -> int: ...

    async def aembed(self, texts: list[str]) -> Matrix: ...


class LocalEmbedder(Embedder, Protocol):
    """An embedder that computes in process, cheaply enough to call inline."""

    def embed(self, texts: list[str]) -> Matrix: ...


def require(*modules: str) -> None:
    """Raise `ConfigError` naming the extra when a module of the cache is missing."""
    missing = [m for m in modules if not _installed(m)]
    if missing:
        raise ConfigError(
            f"the semantic cache needs {', '.join(missing)}: "
            f"install aicp with the '{EXTRA}' extra (pip install 'aicp[{EXTRA}]')"
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked with sys.modules[name] = None
        return False


def wordllama_files() -> tuple[Path, Path]:
    """The weights and tokenizer files inside the installed wordllama package."""
    require("wordllama")
    spec = importlib.util.find_spec("wordllama")  # finds, does not import
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise ConfigError("the wordllama package has no folder to read its weights from")
    root = Path(next(iter(locations)))
    weights, tokenizer = root / WEIGHTS, root / TOKENIZER
    for path in (weights, tokenizer):
        if not path.is_file():
            raise ConfigError(f"wordllama is installed without {path.relative_to(root)}")
    return weights, tokenizer


def normalise_rows(rows: Matrix) -> Matrix:
    """Each row scaled to unit length in place; an all-zero row stays zero."""
    import numpy as np

    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    np.divide(rows, norms, out=rows, where=norms > 0)
    return rows


def _fingerprint(path: Path) -> str:
    """The weights file's size and the SHA-256 of its first megabyte: other weights (a
    new wordllama release, `files=`) never reuse vectors computed with these."""
    with path.open("rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:12]
    return f"{path.stat().st_size:x}-{head}"


class WordLlamaEmbedder:
    """The mean of the text's token vectors from wordllama's `l2_supercat` weights.

    `dims` may truncate the 256 dimensions (the weights are trained to allow
    64 and 128). A text without tokens embeds as zeros, which matches nothing.
    """

    def __init__(self, *, dims: int = 256, files: tuple[Path, Path] | None = None) -> None:
        require("numpy", "safetensors", "tokenizers")
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        weights, tokenizer = files or wordllama_files()
        table = load_file(str(weights)).get(TENSOR)
        if table is None or table.ndim != 2:
            raise ConfigError(f"{weights} holds no {TENSOR} matrix")
        if not 0 < dims <= table.shape[1]:
            raise ConfigError(f"wordllama embeddings have at most {table.shape[1]} dims")
        # float32 once (32 MB): a float16 gather would be cast on every call.
        self._table: Matrix = np.ascontiguousarray(table[:, :dims], dtype=np.float32)
        self._tokenizer: Tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._weights_id = _fingerprint(weights)

    @property
    def dims(self) -> int:
        return int(self._table.shape[1])

    @property
    def name(self) -> str:
        """The weights and dims: vectors stored under this name are what this embedder
        would compute (memory/memory_vectors.py reuses them)."""
        return f"wordllama-l2-{self.dims}-{self._weights_id}"

    def common_words(self) -> frozenset[str]:
        """Lower-case words the tokenizer holds whole: the rest are names or terms
        to the near-miss guard (`semantic.key_facts`)."""
        return frozenset(
            token[1:]
            for token in self._tokenizer.get_vocab()
            if token.startswith(WORD_START) and token[1:].isalpha() and token[1:].islower()
        )

    def embed(self, texts: list[str]) -> Matrix:
        import numpy as np

        rows = np.zeros((len(texts), self.dims), dtype=np.float32)
        last = self._table.shape[0] - 1
        for i, text in enumerate(texts):
            ids = self._tokenizer.encode(text, add_special_tokens=False).ids
            if ids:
                picked = np.minimum(np.asarray(ids, dtype=np.intp), last)
                np.add.reduce(self._table[picked], axis=0, out=rows[i])
        return normalise_rows(rows)

    async def aembed(self, texts: list[str]) -> Matrix:
        # Inline: a thread hand-off would cost about as much as the work.
        return self.embed(texts)


class RouteEmbedder:
    """Embeddings from the caller's async `embed_texts` (an embeddings deployment).

    The rows are checked (one per text, `dims` long) and normalised: not every
    embeddings API returns unit vectors.
    """

    name = "route"

    def __init__(self, embed_texts: EmbedTexts, dims: int) -> None:
        require("numpy")
        if dims <= 0:
            raise ConfigError("embedding dims must be positive")
        self._embed_texts = embed_texts
        self._dims = dims

    @property
    def dims(self) -> int:
        return self._dims

    async def aembed(self, texts: list[str]) -> Matrix:
        import numpy as np

        if not texts:
            return np.zeros((0, self._dims), dtype=np.float32)
        rows = await self._embed_texts(texts)
        if len(rows) != len(texts) or any(len(row) != self._dims for row in rows):
            got = sorted({len(row) for row in rows})
            raise ConfigError(
                f"the embeddings route returned {len(rows)} rows of {got} dims "
                f"for {len(texts)} texts of {self._dims} dims"
            )
        return normalise_rows(np.asarray(rows, dtype=np.float32))
