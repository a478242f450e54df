from __future__ import annotations

import pytest

from aicp.guardrails.pii import PiiDetector, card_brand_ok, iban_ok, luhn_ok, ssn_ok


def spans(text: str, kind: str) -> list[str]:
    return [text[f.start : f.end] for f in PiiDetector().scan(text) if f.kind == kind]


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("Mail jane.doe+work@example.co.uk today", "email", "jane.doe+work@example.co.uk"),
        ("Call me at +44 20 7946 0958 tomorrow", "phone", "+44 20 7946 0958"),
        ("Tel: (555) 123-4567", "phone", "(555) 123-4567"),
        ("office 206.269.0743x9150", "phone", "206.269.0743x9150"),
        ("reach me on +33 (0)1 41 63 60 83", "phone", "+33 (0)1 41 63 60 83"),
        ("card 4111 1111 1111 1111 exp 12/27", "credit_card", "4111 1111 1111 1111"),
        ("amex 378282246310005", "credit_card", "378282246310005"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "iban", "DE89 3704 0044 0532 0130 00"),
        ("pay GB29NWBK60161331926819", "iban", "GB29NWBK60161331926819"),
        ("SSN 123-45-6789.", "us_ssn", "123-45-6789"),
        ("server 8.8.8.8 is down", "ip_address", "8.8.8.8"),
        ("ping 2001:db8::8a2e:370:7334 now", "ip_address", "2001:db8::8a2e:370:7334"),
        (
            "Ship to 78128 Wood Street Apt. 704\nHollandburgh, NY 30246 soon",
            "postal_address",
            "78128 Wood Street Apt. 704\nHollandburgh, NY 30246",
        ),
        ("Dear John Smith,\nthanks", "person_name", "John Smith"),
        ("My name is Ana Lopez and I need help", "person_name", "Ana Lopez"),
    ],
)
def test_each_kind_is_found_with_its_exact_span(text: str, kind: str, expected: str) -> None:
    assert spans(text, kind) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 exp 12/27",  # Luhn fails
        "IBAN DE89 3704 0044 0532 0130 01 please",  # mod 97 fails
        "IBAN DE89 3704 0044 0532 0130 0 please",  # wrong length for DE
        "SSN 000-45-6789, 666-45-6789, 912-45-6789, 123-00-6789, 123-45-0000",
        "released 2024-05-17 as version 3.11.7, build 10.0.19041, at 12:30:45",
        "uuid 123e4567-e89b-12d3-a456-426614174000 and sha 9f8e7d6c5b4a3f2e1d0c9b8a7f6e",
        "bind to 0.0.0.0 or 127.0.0.1, netmask 255.255.255.0, v1.2.3.4",
        "Firefox/3.8 rv:1.9.5.20 Gecko/20100101",
        "MAC 00:1A:2B:3C:4D:5E, std::vector<int>, order #1234567890",
        "git clone git@github.com:owner/repo.git",
        "Hello World, dear reader, thanks for all the fish",
        "ISBN 978-3-16-148410-0 costs $12.99; the population was 8,336,817",
    ],
)
def test_ordinary_numbers_and_near_misses_are_not_pii(text: str) -> None:
    assert PiiDetector().scan(text) == []


def test_a_phone_pattern_inside_a_valid_iban_is_not_also_a_phone() -> None:
    found = PiiDetector().scan("IBAN DE89 3704 0044 0532 0130 00")
    assert [f.kind for f in found] == ["iban"]


def test_a_compact_number_is_a_phone_only_next_to_a_word_that_says_so() -> None:
    assert spans("Please text 0389103173 when you land", "phone") == ["0389103173"]
    assert spans("Order 0389103173 shipped", "phone") == []


def test_private_addresses_are_reported_with_lower_confidence() -> None:
    (private,) = PiiDetector().scan("vpn gives 10.1.2.3")
    (public,) = PiiDetector().scan("vpn gives 81.2.69.160")
    assert private.confidence < public.confidence


def test_kinds_limit_what_is_reported() -> None:
    text = "jane@example.com or +44 20 7946 0958"
    assert [f.kind for f in PiiDetector(kinds=["phone"]).scan(text)] == ["phone"]
    assert {"email", "phone", "credit_card", "iban", "us_ssn"} <= PiiDetector.KINDS


def test_an_unknown_kind_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="passport"):
        PiiDetector(kinds=["passport"])


def test_findings_serialise_without_the_matched_text() -> None:
    (finding,) = PiiDetector().scan("SSN 123-45-6789")
    assert finding.as_dict() == {
        "detector": "pii",
        "kind": "us_ssn",
        "start": 4,
        "end": 15,
        "confidence": finding.confidence,
    }


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert card_brand_ok("378282246310005") and not card_brand_ok("9782246310005")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")
    assert ssn_ok("123", "45", "6789") and not ssn_ok("666", "45", "6789")
