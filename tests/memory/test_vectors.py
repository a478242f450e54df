from __future__ import annotations

import math

import pytest

np = pytest.importorskip("numpy", reason="the semantic extra (numpy) is not installed")

from aicp.memory.vectors import ANYONE, Scope, VectorIndex  # noqa: E402 (after the skip)

DIMS = 256
NOW = 1_000.0


def unit(seed: int, dims: int = DIMS) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dims).astype(np.float32)
    return v / np.linalg.norm(v)


def near(v: np.ndarray, noise: float, seed: int) -> np.ndarray:
    w = v + noise * np.random.default_rng(seed).standard_normal(v.size).astype(np.float32)
    return w / np.linalg.norm(w)


def search(
    index: VectorIndex[str],
    vector: np.ndarray,
    *,
    model: str = "m",
    threshold: float = 0.9,
    sensitivity: str = "internal",
    scope: Scope = ANYONE,
    context: str = "",
    now: float = NOW,
) -> str | None:
    found = index.search(
        model,
        vector,
        threshold,
        now=now,
        sensitivity=sensitivity,
        scope=scope,
        context=context,
    )
    return None if found is None else found.id


def test_an_entry_is_found_by_a_near_vector_and_scored_by_cosine() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    v = unit(1)
    index.add("a", "m", v, "payload")
    query = near(v, 0.01, 2)
    found = index.search("m", query, 0.9, now=NOW, sensitivity="internal")
    assert found is not None and found.id == "a" and found.payload == "payload"
    assert found.score == pytest.approx(float(v @ query), abs=1e-5)
    assert index.search("m", unit(3), 0.9, now=NOW, sensitivity="internal") is None


def test_a_cached_answer_for_one_model_never_serves_another() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    index.add("a", "gpt-4o", unit(1), "")
    assert search(index, unit(1), model="gpt-4o") == "a"
    assert search(index, unit(1), model="gpt-4o-mini") is None


def test_scope_filters_on_key_user_and_team() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    index.add("a", "m", unit(1), "", scope=Scope(key="k1", user="u1", team="t1"))
    assert search(index, unit(1), scope=Scope(key="k1")) == "a"
    assert search(index, unit(1), scope=Scope(user="u1", team="t1")) == "a"
    assert search(index, unit(1), scope=Scope(key="k2")) is None
    assert search(index, unit(1), scope=Scope(user="u2")) is None
    assert search(index, unit(1), scope=Scope(team="never-seen")) is None


def test_an_entry_serves_only_requests_of_its_own_sensitivity() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    index.add("a", "m", unit(1), "", sensitivity="confidential")
    assert search(index, unit(1), sensitivity="internal") is None
    assert search(index, unit(1), sensitivity="confidential") == "a"
    assert search(index, unit(1), sensitivity="restricted") is None
    with pytest.raises(ValueError, match="unknown sensitivity"):
        search(index, unit(1), sensitivity="secret")


def test_an_expired_entry_is_not_served_and_is_purged() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    index.add("a", "m", unit(1), "", expires_at=NOW + 10)
    index.add("b", "m", unit(2), "", expires_at=math.inf)
    assert search(index, unit(1), now=NOW + 9) == "a"
    assert search(index, unit(1), now=NOW + 10) is None
    assert index.purge_expired(NOW + 10) == 1
    assert "a" not in index and "b" in index and len(index) == 1


def test_the_context_fingerprint_must_match() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    index.add("a", "m", unit(1), "", context="ctx-1")
    assert search(index, unit(1), context="ctx-1") == "a"
    assert search(index, unit(1), context="ctx-2") is None
    assert search(index, unit(1)) is None


def test_when_the_best_match_is_filtered_out_the_next_valid_one_is_found() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    v = unit(1)
    index.add("best", "m", v, "", scope=Scope(key="other"))
    index.add("second", "m", near(v, 0.02, 5), "", scope=Scope(key="mine"))
    index.add("expired", "m", near(v, 0.01, 6), "", scope=Scope(key="mine"), expires_at=0.0)
    assert search(index, v, scope=Scope(key="mine")) == "second"


def test_matches_come_best_first_up_to_the_limit() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    v = unit(1)
    for i, noise in enumerate((0.04, 0.01, 0.03, 0.02)):
        index.add(f"e{i}", "m", near(v, noise, i), "")
    found = index.matches("m", v, 0.5, now=NOW, sensitivity="internal", limit=3)
    assert [m.id for m in found] == ["e1", "e3", "e2"]
    assert found[0].score >= found[1].score >= found[2].score


def test_remove_and_remove_where() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    for i in range(6):
        scope = Scope(key=f"k{i % 2}", user=f"u{i % 3}", team="t")
        index.add(f"e{i}", "m" if i < 4 else "n", unit(i), "", scope=scope)
    assert index.remove("e0") and not index.remove("e0")
    assert search(index, unit(0)) is None
    assert index.remove_where(user="u1") == 2  # e1, e4
    assert index.remove_where(model="m", key="k1") == 1  # e3
    assert index.remove_where(key="unknown") == 0
    assert sorted(e for e in ("e2", "e5") if e in index) == ["e2", "e5"]
    assert index.remove_where(team="t") == 2 and len(index) == 0
    with pytest.raises(ValueError):
        index.remove_where()


def test_the_index_grows_past_its_initial_capacity() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS, initial_capacity=4)
    for i in range(100):
        index.add(f"e{i}", "m", unit(i), str(i))
    assert len(index) == 100
    assert all(search(index, unit(i), threshold=0.99) == f"e{i}" for i in range(100))


def test_removals_compact_and_every_survivor_stays_findable() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS, initial_capacity=8)
    for i in range(300):
        index.add(f"e{i}", "m", unit(i), str(i))
    for i in range(300):
        if i % 4:
            index.remove(f"e{i}")
    for i in range(300, 340):  # appends after compaction land in the right rows
        index.add(f"e{i}", "m", unit(i), str(i))
    survivors = [i for i in range(340) if i % 4 == 0 or i >= 300]
    assert len(index) == len(survivors)
    for i in survivors:
        found = index.search("m", unit(i), 0.99, now=NOW, sensitivity="internal")
        assert found is not None and found.id == f"e{i}" and found.payload == str(i)


def test_adding_an_id_again_replaces_the_entry() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    index.add("a", "m", unit(1), "old")
    index.add("a", "other", unit(2), "new")
    assert len(index) == 1 and search(index, unit(1)) is None
    assert search(index, unit(2), model="other") == "a"


def test_bad_vectors_are_refused() -> None:
    index: VectorIndex[str] = VectorIndex(DIMS)
    with pytest.raises(ValueError, match="zero vector"):
        index.add("a", "m", np.zeros(DIMS), "")
    with pytest.raises(ValueError, match="dims"):
        index.add("a", "m", unit(1, 64), "")
    with pytest.raises(ValueError, match="sensitivity"):
        index.add("a", "m", unit(1), "", sensitivity="top-secret")
    assert index.search("m", np.zeros(DIMS), 0.5, now=NOW, sensitivity="public") is None


@pytest.mark.parametrize("dims", [64, 256, 384])
def test_search_agrees_with_brute_force_under_filters(dims: int) -> None:
    """Clustered vectors (many near each query), random owners and expiries."""
    rng = np.random.default_rng(7)
    centres = [unit(1000 + c, dims) for c in range(5)]
    index: VectorIndex[int] = VectorIndex(dims, initial_capacity=16)
    rows, keys, expiries = [], [], []
    for i in range(2000):
        v = near(centres[i % 5], float(rng.uniform(0.005, 0.08)), i)
        keys.append(f"k{rng.integers(3)}")
        expiries.append(float(rng.choice([NOW - 1, NOW + 100])))
        rows.append(v)
        index.add(str(i), "m", v, i, scope=Scope(key=keys[-1]), expires_at=expiries[-1])
    matrix = np.stack(rows)
    for q in range(20):
        query = near(centres[q % 5], 0.03, 10_000 + q)
        wanted = f"k{q % 3}"
        allowed = np.array([k == wanted and e > NOW for k, e in zip(keys, expiries, strict=True)])
        scores = np.where(allowed, matrix @ query, -np.inf)
        found = index.search(
            "m", query, 0.9, now=NOW, sensitivity="internal", scope=Scope(key=wanted)
        )
        best = int(np.argmax(scores))
        if scores[best] >= 0.9:
            assert found is not None and found.payload == best
            assert found.score == pytest.approx(float(scores[best]), abs=1e-4)
        else:
            assert found is None
