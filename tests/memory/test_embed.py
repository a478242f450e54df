from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import time

import pytest

from aicp.errors import ConfigError
from aicp.memory import embed

HAVE_NUMPY = importlib.util.find_spec("numpy") is not None
HAVE_WORDLLAMA = HAVE_NUMPY and importlib.util.find_spec("wordllama") is not None
needs_numpy = pytest.mark.skipif(not HAVE_NUMPY, reason="the semantic extra (numpy) is missing")
needs_wordllama = pytest.mark.skipif(
    not HAVE_WORDLLAMA, reason="the semantic extra (wordllama) is not installed"
)

QUESTION = (
    "Could you explain in a few sentences how the TCP three-way handshake works and why "
    "it is needed before data can be sent between two hosts on a network today?"
)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PATH": "/usr/bin:/bin"},
    )


def test_importing_the_module_imports_neither_numpy_nor_tokenizers() -> None:
    done = run_python(
        """
        import sys
        import aicp.memory.embed
        heavy = [m for m in ("numpy", "tokenizers", "safetensors", "wordllama") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    assert done.returncode == 0, done.stderr


@needs_wordllama
def test_the_local_embedder_never_touches_the_network() -> None:
    done = run_python(
        """
        import socket, sys

        def refuse(*args, **kwargs):
            raise AssertionError("network access")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from aicp.memory.embed import WordLlamaEmbedder
        rows = WordLlamaEmbedder().embed(["Is the network needed?"])
        assert rows.shape == (1, 256)
        # wordllama's own loader (with its hub fallback) is never imported.
        assert "wordllama" not in sys.modules and "huggingface_hub" not in sys.modules
        print("ok")
        """,
        HF_HUB_OFFLINE="1",
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.fixture(scope="module")
def local() -> embed.WordLlamaEmbedder:
    return embed.WordLlamaEmbedder()


@needs_wordllama
def test_rows_are_unit_float32_and_paraphrases_score_above_unrelated_text(
    local: embed.WordLlamaEmbedder,
) -> None:
    import numpy as np

    rows = local.embed(
        [
            "How do I sort a list in Python?",
            "how to sort a python list",
            "What is the boiling point of water?",
        ]
    )
    assert rows.dtype == np.float32 and rows.shape == (3, local.dims)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert float(rows[0] @ rows[1]) > 0.8 > float(rows[0] @ rows[2])


@needs_wordllama
async def test_aembed_equals_embed_and_empty_text_embeds_as_zeros(
    local: embed.WordLlamaEmbedder,
) -> None:
    import numpy as np

    rows = await local.aembed(["hello there", ""])
    assert np.array_equal(rows[0], local.embed(["hello there"])[0])
    assert not rows[1].any()


@needs_wordllama
def test_fewer_dims_are_a_prefix_of_the_trained_weights() -> None:
    small = embed.WordLlamaEmbedder(dims=64)
    assert small.dims == 64 and small.embed(["hi"]).shape == (1, 64)
    with pytest.raises(ConfigError, match="at most 256"):
        embed.WordLlamaEmbedder(dims=1024)


@needs_wordllama
def test_a_thirty_word_question_embeds_in_well_under_a_millisecond(
    local: embed.WordLlamaEmbedder,
) -> None:
    assert len(QUESTION.split()) == 30
    local.embed([QUESTION])
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(50):
            local.embed([QUESTION])
        best = min(best, (time.perf_counter() - started) / 50)
    assert best < 1e-3  # measured ~40 µs


@needs_wordllama
def test_common_words_are_the_tokenizers_whole_lower_case_words(
    local: embed.WordLlamaEmbedder,
) -> None:
    words = local.common_words()
    assert {"weather", "nice", "python"} <= words
    assert "cannes" not in words and "Paris" not in words and len(words) > 5000


@needs_numpy
async def test_the_route_embedder_normalises_what_the_route_returns() -> None:
    import numpy as np

    asked: list[list[str]] = []

    async def embed_texts(texts: list[str]) -> list[list[float]]:
        asked.append(texts)
        return [[3.0, 4.0, 0.0] for _ in texts]

    route = embed.RouteEmbedder(embed_texts, dims=3)
    rows = await route.aembed(["a", "b"])
    assert asked == [["a", "b"]] and rows.dtype == np.float32
    assert np.allclose(rows, [[0.6, 0.8, 0.0], [0.6, 0.8, 0.0]])
    assert (await route.aembed([])).shape == (0, 3)


@needs_numpy
async def test_the_route_embedder_refuses_rows_of_the_wrong_shape() -> None:
    async def short(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0]]

    with pytest.raises(ConfigError, match="returned 1 rows of \\[2\\] dims for 2 texts of 3"):
        await embed.RouteEmbedder(short, dims=3).aembed(["a", "b"])


def test_without_numpy_the_embedders_and_the_index_name_the_extra() -> None:
    done = run_python(
        """
        import sys
        sys.modules["numpy"] = None  # as if it were not installed
        from aicp.errors import ConfigError
        from aicp.memory.embed import RouteEmbedder

        async def embed_texts(texts):
            return []

        try:
            RouteEmbedder(embed_texts, dims=3)
        except ConfigError as exc:
            print(exc)
        try:
            import aicp.memory.vectors
        except ConfigError as exc:
            print(exc)
        """
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all("aicp[semantic]" in line for line in lines), done.stderr


def test_a_missing_package_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        return None if name == "wordllama" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError, match=r"wordllama.*aicp\[semantic\]"):
        embed.WordLlamaEmbedder()
