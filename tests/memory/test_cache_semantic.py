from __future__ import annotations

import hashlib
import importlib.util
from typing import Any

import pytest

np = pytest.importorskip("numpy", reason="the semantic extra (numpy) is not installed")

from aicp.errors import ConfigError  # noqa: E402 (after the skip)
from aicp.memory.cache_key import SemanticRequest, semantic_request  # noqa: E402
from aicp.memory.semantic import (  # noqa: E402
    Evidence,
    KeyFacts,
    SemanticCache,
    compare,
    embedding_text,
    key_facts,
)
from aicp.memory.vectors import Scope, VectorIndex  # noqa: E402

needs_wordllama = pytest.mark.skipif(
    importlib.util.find_spec("wordllama") is None,
    reason="the semantic extra (wordllama) is not installed",
)


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        ("What is the capital of France?", "Tell me the capital city of France."),
        ("What is the capital of France?", "what's france's capital"),
        ("Convert 5 miles to kilometers", "Convert five miles to km"),
        ("What is 1,000 times 3.50?", "What is 1000 times 3.5?"),
        ("What happened on March 3rd, 2024?", "What happened on 3 March 2024?"),
        ("It costs twenty-five thousand dollars", "it costs $25,000"),
        ("What does the Python function zip do?", "In python, what does zip do?"),
        ("How do I make pancakes without eggs?", "Pancakes without eggs: how?"),
        ("Which is bigger, Mars or Venus?", "Which is larger, Mars or Venus?"),
    ],
)
def test_the_guard_passes_the_same_facts_said_differently(cached: str, query: str) -> None:
    verdict = compare(key_facts(query), key_facts(cached))
    assert verdict.passed, verdict.differences


@pytest.mark.parametrize(
    ("cached", "query", "kind"),
    [
        ("What is the capital of France?", "What is the capital of Germany?", "names"),
        ("Flights from Paris to Rome", "Flights from Rome to Paris", "names"),
        ("Who painted The Night Watch?", "Who painted The Night Cafe?", "names"),
        ("Convert 5 miles to kilometers", "Convert 7 miles to kilometers", "numbers"),
        ("Write a poem with three verses", "Write a poem with four verses", "numbers"),
        ("What is 2 GB in MB?", "What is 2 TB in MB?", "units"),
        ("Convert 5 miles to kilometers", "Convert 5 kilometers to miles", "units"),
        ("Is coffee bad for you?", "Is coffee not bad for you?", "negations"),
        ("Why does my code compile?", "Why doesn't my code compile?", "negations"),
        ("How do I travel with a pass?", "How do I travel without a pass?", "negations"),
        ("Sort the list in ascending order", "Sort the list in descending order", "comparisons"),
        ("What happened before the war?", "What happened after the war?", "comparisons"),
        ("What is the maximum speed?", "What is the minimum speed?", "comparisons"),
        ('What does the error "connection refused" mean?', 'What does "timeout" mean?', "quoted"),
        ("What does os.path.join do?", "What does os.path.split do?", "identifiers"),
        ("How do I use my_func?", "How do I use my_other_func?", "identifiers"),
        ("What does --force do?", "What does --dry-run do?", "identifiers"),
        ("What does the zip function do?", "What does the map function do?", "names"),
        ("Why did the war end?", "When did the war end?", "questions"),
        ("How do I upload a file?", "How do I download a file?", "contrasts"),
        ("Does the dog chase the cat?", "Does the cat chase the dog?", "order"),
        ("Convert a list to a set", "Convert a set to a list", "order"),
    ],
)
def test_the_guard_rejects_a_near_miss_and_says_which_facts_differ(
    cached: str, query: str, kind: str
) -> None:
    verdict = compare(key_facts(query), key_facts(cached))
    assert not verdict.passed and kind in verdict.differences


def test_common_words_make_lower_case_names_count() -> None:
    common = {"what", "is", "the", "best", "beach", "in", "nice"}
    a, b = "what is the best beach in nice", "what is the best beach in cannes"
    assert compare(key_facts(b), key_facts(a)).passed  # no capitals: no names
    verdict = compare(key_facts(b, common), key_facts(a, common))
    assert not verdict.passed and verdict.differences == ("names",)


def test_numbers_are_read_in_digits_and_words() -> None:
    facts = key_facts("one hundred and five, 2,500 and 3.50, the first of twenty-one, half")
    assert facts.numbers == ("105", "2500", "3.5", "1", "21", "0.5")


def test_the_embedded_text_drops_case_punctuation_and_filler() -> None:
    assert embedding_text("Could you please tell me what's the capital of France?") == (
        "whats capital france"
    )
    assert embedding_text("Please!") == "please"  # nothing but filler is kept as it is


class BagOfWords:
    """A deterministic embedder for the decision logic: hashed word counts."""

    dims = 64

    def embed(self, texts: list[str]) -> Any:
        rows = np.zeros((len(texts), self.dims), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.split():
                rows[i, hashlib.sha256(word.encode()).digest()[0] % self.dims] += 1.0
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms > 0, norms, 1.0)

    async def aembed(self, texts: list[str]) -> Any:
        return self.embed(texts)


def cache(**options: Any) -> SemanticCache:
    return SemanticCache(BagOfWords(), VectorIndex[KeyFacts](BagOfWords.dims), **options)


async def remember(c: SemanticCache, text: str, entry: str, context: str = "ctx") -> None:
    request = SemanticRequest(text, context)
    (vector,) = await c.embed([text])
    c.add(entry, "m", request, vector, sensitivity="internal", expires_at=float("inf"))


async def ask(c: SemanticCache, text: str, context: str = "ctx", **options: Any) -> Evidence:
    (vector,) = await c.embed([text])
    options.setdefault("sensitivity", "internal")
    return c.lookup("m", SemanticRequest(text, context), vector, now=0.0, **options)


async def test_a_paraphrase_hits_with_its_evidence() -> None:
    c = cache()
    await remember(c, "What is the capital of France?", "e1")
    evidence = await ask(c, "Please, what is the capital of France")
    assert evidence.hit and evidence.entry_id == "e1" and evidence.rejected == 0
    assert evidence.score is not None and evidence.score >= evidence.threshold == 0.92
    assert evidence.guard is not None and evidence.guard.passed
    assert evidence.as_dict()["guard"] == []


async def test_a_near_miss_above_the_threshold_is_stopped_by_the_guard_alone() -> None:
    c = cache()
    await remember(c, "Convert 5 miles to kilometers", "e1")
    evidence = await ask(c, "Convert 5 kilometers to miles")  # the same bag of words
    assert not evidence.hit and evidence.entry_id is None and evidence.rejected == 1
    assert evidence.score == pytest.approx(1.0)
    assert evidence.guard is not None and "units" in evidence.guard.differences
    assert evidence.as_dict()["rejected"] == 1 and evidence.as_dict()["entry_id"] is None
    unguarded = SemanticCache(c.embedder, c.index, guard=False)
    assert (await ask(unguarded, "Convert 5 kilometers to miles")).hit


async def test_the_guard_moves_on_to_the_next_candidate() -> None:
    c = cache()
    await remember(c, "Convert 5 kilometers to miles", "km-to-miles")
    await remember(c, "Convert 5 miles to kilometers", "miles-to-km")
    for question, entry in [
        ("Convert 5 miles to kilometers", "miles-to-km"),
        ("Convert 5 kilometers to miles", "km-to-miles"),
    ]:
        evidence = await ask(c, question)
        assert evidence.hit and evidence.entry_id == entry


async def test_another_context_or_owner_never_hits() -> None:
    c = cache()
    await remember(c, "What is the capital of France?", "e1", context="ctx-a")
    assert not (await ask(c, "What is the capital of France?", context="ctx-b")).hit
    assert not (await ask(c, "What is the capital of France?", "ctx-a", scope=Scope(user="u"))).hit
    assert (await ask(c, "What is the capital of France?", context="ctx-a")).hit


async def test_thresholds_are_per_model_and_validated() -> None:
    c = cache(thresholds={"m": 0.999})
    await remember(c, "What is the capital of France?", "e1")
    evidence = await ask(c, "capital France what is the of")  # same words, other order
    assert evidence.threshold == 0.999 and evidence.hit
    assert not (await ask(c, "What is the capital of France today?")).hit
    assert c.threshold_for("other") == 0.92
    with pytest.raises(ConfigError, match="threshold for m"):
        cache(thresholds={"m": 1.5})
    with pytest.raises(ConfigError, match="dims"):
        SemanticCache(BagOfWords(), VectorIndex[KeyFacts](32))


@needs_wordllama
async def test_a_request_body_round_trips_through_the_local_embedder() -> None:
    from aicp.memory.embed import WordLlamaEmbedder

    embedder = WordLlamaEmbedder()
    c = SemanticCache(
        embedder, VectorIndex[KeyFacts](embedder.dims), common_words=embedder.common_words()
    )
    system = {"role": "system", "content": "Answer briefly."}

    def body(question: str) -> dict[str, Any]:
        return {"messages": [system, {"role": "user", "content": question}], "stream": True}

    stored = semantic_request("openai", "chat", "gpt-4o-mini", body("What's the capital of Peru?"))
    assert stored is not None
    (vector,) = await c.embed([stored.text])
    c.add("e1", "gpt-4o-mini", stored, vector, sensitivity="internal", expires_at=10.0)
    for question, hit in [
        ("Could you tell me the capital of Peru, please?", True),
        ("what's the capital of peru", True),
        ("What's the capital of Chile?", False),
    ]:
        asked = semantic_request("openai", "chat", "gpt-4o-mini", body(question))
        assert asked is not None
        (vector,) = await c.embed([asked.text])
        found = c.lookup("gpt-4o-mini", asked, vector, now=1.0, sensitivity="internal")
        assert found.hit is hit, (question, found)
