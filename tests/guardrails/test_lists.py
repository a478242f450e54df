from __future__ import annotations

import pytest

from aicp.guardrails.base import Finding
from aicp.guardrails.lists import ListDetector, SizeCap


def blocked(detector: ListDetector, text: str) -> list[str]:
    return [text[f.start : f.end] for f in detector.scan(text)]


def test_blocked_terms_match_whole_words_in_any_case() -> None:
    detector = ListDetector(block=["Project Falcon", "acme"])
    text = "About PROJECT FALCON: acme and acmeCorp and Acme."
    assert blocked(detector, text) == ["PROJECT FALCON", "acme", "Acme"]


def test_terms_that_start_or_end_with_punctuation_still_match() -> None:
    detector = ListDetector(block=[".env", "c++"])
    assert blocked(detector, "commit the .env file? no, the c++ one") == [".env", "c++"]


def test_the_longest_term_wins_where_two_start_together() -> None:
    detector = ListDetector(block=["secret", "secret plan"])
    assert blocked(detector, "our secret plan") == ["secret plan"]


def test_allowed_terms_excuse_equal_matches_and_long_terms_contained_ones() -> None:
    detector = ListDetector(block=["acme"], allow=["ACME"])
    assert detector.scan("acme") == []
    assert detector.allowed("Acme")
    # A short term does not excuse a longer match containing it (a key with "test" in it).
    assert not detector.allowed("mail for Acme Inc")
    assert not ListDetector(allow=["test"]).allowed("sk_test_4eC39HqLyjWDarjtT1zdp7dc")
    assert ListDetector(allow=["@example.com"]).allowed("jane@example.com")
    assert not ListDetector(allow=["acme"]).allowed("globex")


def test_excuse_filters_other_detectors_findings_by_their_text() -> None:
    text = "mail support@acme.example or jane@corp.example"
    findings = [
        Finding("pii", "email", 5, 25, 0.95),
        Finding("pii", "email", 29, 46, 0.95),
        Finding("size", "too_long", 0, 0, 1.0),
    ]
    kept = ListDetector(allow=["@acme.example"]).excuse(text, findings)
    assert kept == findings[1:]


def test_no_terms_means_no_findings() -> None:
    assert ListDetector().scan("anything at all") == []


def test_size_caps_count_characters_and_estimated_tokens() -> None:
    assert SizeCap(max_chars=10).scan("x" * 10) == []
    assert [f.kind for f in SizeCap(max_chars=10).scan("x" * 11)] == ["too_long"]
    assert SizeCap(max_tokens=2).scan("x" * 8) == []  # about four characters a token
    (finding,) = SizeCap(max_tokens=2).scan("x" * 9)
    assert (finding.detector, finding.start, finding.end) == ("size", 0, 0)
    assert SizeCap().scan("x" * 1_000_000) == []


def test_a_cap_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        SizeCap(max_chars=0)
