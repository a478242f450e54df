"""Personal data: regexes find candidates, checksums and context decide.

Cost is what shapes this module. One scan for digit-dense runs feeds every numeric
kind (phone, card, IBAN, SSN, IPv4), and the precise patterns then run only inside
those runs; e-mail waits for an "@", IPv6 for a ":"-separated hex group, addresses and
names for one of the words they need. Checksums (Luhn, IBAN mod 97, SSN number ranges)
run on candidates only, so an ordinary prompt pays for about two regex scans.

Names and postal addresses have no checksum and we ship no NER model, so they are found
from context only (a title, "my name is", a sign-off; a street suffix or a
"City, ST 12345" line): precise, and blind to a bare name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from typing import ClassVar

from aicp.guardrails.base import Finding, search_near, select_kinds, words

# Digit-dense runs: at least seven characters of digits and phone/card/IP separators,
# found in a copy of the text where every digit is "0": a pattern that starts with a
# literal is searched for much faster than one that starts with a class like \d.
_DIGIT_MASK = bytes(0x30 if 0x30 <= b <= 0x39 else b for b in range(256))
_RUN = re.compile(rb"0[0 .()/-]{5,}0")
_CARD_SEPARATOR = re.compile(r"[ -]")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d-])")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
_VERSION_BEFORE = re.compile(r"(?:\bv|\brv:|[A-Za-z]/|\bver(?:sion)?\.?\s?)$", re.I)
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_PHONE = re.compile(
    r"""(?<![\w+])(?<!\w[.-])(?<!\d\ )(?<![A-Z\d]{4}\ )(?:
      (?:\+|\b00(?=[1-9]))\d{1,3}[ .-]?(?:\(0\)[ .-]?)?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]?\d{2,5}){1,4}
    | \b1[ .-]?\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}
    | \b1[ .-]\d{3}[ .-]\d{3}[ .-]\d{4}
    | \(\d{2,5}\)[ .-]?\d{3,4}(?:[ .-]?\d{2,4})?
    | \b\d{3}[.-]\d{3}[.-]\d{4}
    | \b0[1-9]\d{0,3}(?:[ /.-]\d{2,8}){1,4}
    | \b\d{2,3}[ ]\d{3,4}[ -]\d{4}
    )(?:\ ?(?:x|ext\.?)\ ?\d{1,5})?(?!\w|[ .-]\d)""",
    re.X,
)
# Any 7 to 15 digits, taken for a phone number only next to a word that says so.
_TOLD_PHONE = re.compile(r"(?<![\w+/.])\+?\d(?:[ .-]?\d){6,14}(?![\w]|[ .-]\d)")
_DATE = re.compile(r"(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})")
_PHONE_CONTEXT = re.compile(
    r"\b(?:phone|tel|telephone|call|mobile|cell|fax|text|sms|whatsapp|contact|reach|ring|dial)",
    re.I,
)
_CARD_CONTEXT = re.compile(r"\b(?:card|visa|mastercard|amex|credit|debit|cc|payment)\b", re.I)
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social security|taxpayer|tin)\b", re.I)
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)


def _listed(words: str) -> tuple[str, ...]:
    """A word list written as one string, which reads better than a column of quotes."""
    return tuple(words.split())


# USPS Publication 28 street suffixes (and common abbreviations).
_SUFFIXES = _listed(
    "Alley Annex Arcade Avenue Ave Bayou Beach Bend Bluffs? Bottom Boulevard Blvd Branch "
    "Bridge Brooks? Burgs? Bypass Camp Canyon Cape Causeway Centers? Center Centre Circles? "
    "Cir Cliffs? Club Commons? Corners? Course Courts? Ct Coves? Creek Crescent Crest "
    "Crossing Crossroads? Curve Dale Dam Divide Drives? Dr Estates? Expressway Extensions? "
    "Falls? Ferry Fields? Flats? Fords? Forest Forges? Forks? Fort Freeway Gardens? Gateway "
    "Glens? Greens? Groves? Harbors? Haven Heights Highway Hwy Hills? Hollow Inlet Islands? "
    "Isle Junctions? Keys? Knolls? Lakes? Land Landing Lane Ln Lights? Loaf Locks? Lodge "
    "Loop Mall Manors? Meadows? Mews Mills? Mission Motorway Mount Mountains? Neck Orchard "
    "Oval Overpass Parks? Parkways? Pkwy Pass Passage Path Pike Pines? Place Pl Plains? Plaza "
    "Points? Ports? Prairie Radial Ramp Ranch Rapids? Rest Ridges? River Roads? Rd Route Row "
    "Rue Run Shoals? Shores? Skyway Springs? Spurs? Squares? Sq Station Stravenue Stream "
    "Streets? St Summit Terrace Ter Throughway Trace Track Trafficway Trail Trailer Tunnel "
    "Turnpike Underpass Unions? Valleys? Via Viaduct Views? Villages? Ville Vista Walks? "
    "Wall Ways? Wells?"
)


def _cased(suffixes: tuple[str, ...]) -> dict[bytes, tuple[str, ...]]:
    """Lower-cased word -> the capitalised form a street name uses, for the word gate."""
    forms = [s[:-2] + ending for s in suffixes if s.endswith("?") for ending in ("", s[-2])]
    forms += [s for s in suffixes if not s.endswith("?")]
    return {form.lower().encode(): (form,) for form in forms}


_SUFFIX_CASED = _cased(_SUFFIXES)
_SUFFIX_WORDS = frozenset(_SUFFIX_CASED)
_STREET = re.compile(
    r"\b\d{1,6}[A-Z]?(?:\s+[NSEW]\.?)?(?:\s+[A-Z][A-Za-z'-]+){1,4}\s+(?:"
    + "|".join(_SUFFIXES)
    + r")\b\.?(?:,?\s+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|#)\s*[\w-]+)?"
)
_CITY_LINE = re.compile(
    r"(?:\b[A-Z][A-Za-z'.-]+(?:\s[A-Z][A-Za-z'.-]+){0,3},\s+|\b[ADF]PO\s+)[A-Z]{2}\s+\d{5}"
    r"(?:-\d{4})?\b"
)
# Two patterns, not one alternation, so that each starts with a literal.
_CITY_HINTS = (re.compile(r",\s+[A-Z]{2}\s+\d{5}\b"), re.compile(r"PO\s+[A-Z]{2}\s+\d{5}\b"))
_MILITARY_LINE = re.compile(
    r"\b(?:(?:PSC|Unit)\s+\d{1,5},?\s+Box\s+\d{1,5}|(?:USNS|USNV|USS)\s+[A-Z][a-z]+)\b"
)
_MILITARY = {b"psc": "PSC", b"unit": "Unit", b"usns": "USNS", b"usnv": "USNV", b"uss": "USS"}
_MILITARY_WORDS = frozenset(_MILITARY)

_NAME = r"[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?"
_PERSON = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Madam)\.?\s+"
    r"|\b(?:[Mm]y name is|[Nn]ame:|[Dd]ear|[Aa]ttn:?|[Ss]igned,?)\s+"
    r"|\b(?:[Rr]egards|[Ss]incerely|[Cc]heers|[Tt]hanks|[Bb]est),?\n\s*)"
    r"(" + _NAME + r"(?:\s+(?:[A-Z]\.\s+)?" + _NAME + r"){0,2})"
)
# lower-cased cue word -> how it is written before a name.
_PERSON_CUES: dict[bytes, tuple[str, ...]] = {
    b"mr": ("Mr",), b"mrs": ("Mrs",), b"ms": ("Ms",), b"mx": ("Mx",), b"miss": ("Miss",),
    b"dr": ("Dr",), b"prof": ("Prof",), b"sir": ("Sir",), b"dame": ("Dame",),
    b"madam": ("Madam",), b"name": ("name is", "Name:", "name:"), b"dear": ("Dear", "dear"),
    b"attn": ("Attn", "attn"), b"signed": ("Signed", "signed"),
    b"regards": ("egards,",), b"sincerely": ("incerely,",), b"cheers": ("heers,",),
    b"thanks": ("hanks,",), b"best": ("est,",),
}  # fmt: skip
_PERSON_WORDS = frozenset(_PERSON_CUES)
_NOT_NAMES = frozenset(
    _listed(
        "All Everyone Team Sir Madam Customer Customers User Users Friends Colleagues Folks "
        "There World Reader Hiring Manager Support Admin Team Monday Tuesday Wednesday Thursday "
        "Friday Saturday Sunday The This That"
    )
)

# Country code -> IBAN length, from the SWIFT IBAN registry.
_IBAN_LENGTHS = dict(
    (entry[:2], int(entry[2:]))
    for entry in _listed(
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 "
        "DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 "
        "HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 "
        "MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 "
        "RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 "
        "VA22 VG24 XK20 YE30"
    )
)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand_ok(digits: str) -> bool:
    """Whether the issuer prefix and the length belong to a card scheme (ISO/IEC 7812)."""
    n, p2, p4 = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if p4 in (2131, 1800):
        return n == 15
    if p2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    if p4 == 6011 or p2 in (35, 62, 64, 65):  # Discover, JCB (3528-3589, and 35 is JCB's), UnionPay
        return 16 <= n <= 19
    return p2 in (50, 56, 57, 58, 60, 63, 67, 69) and 12 <= n <= 19  # Maestro and others


def iban_ok(compact: str) -> bool:
    """Country length and the ISO 13616 mod-97 check of an IBAN without spaces."""
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """Numbers the SSA never issues: area 000, 666, 900-999; group 00; serial 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _inside_token(text: str, start: int) -> bool:
    """Whether digits at `start` continue a hash, UUID or version ("a456", "1.2.3-4")."""
    before = text[start - 1] if start else " "
    if "a" <= before <= "z":
        return True
    return before in "-." and start > 1 and text[start - 2].isalnum()


def _context(text: str, start: int, cues: re.Pattern[str], reach: int = 40, end: int = 0) -> bool:
    """Whether a cue word is within `reach` characters before (or 24 after `end`)."""
    if cues.search(text, max(0, start - reach), start):
        return True
    return bool(end) and cues.search(text, end, end + 24) is not None


class PiiDetector:
    """E-mail, phone, payment card, IBAN, US SSN, IP address, postal address and name."""

    name = "pii"
    KINDS: ClassVar[frozenset[str]] = frozenset(
        {
            "email", "phone", "credit_card", "iban", "us_ssn", "ip_address",
            "postal_address", "person_name",
        }
    )  # fmt: skip
    _NUMERIC: ClassVar[frozenset[str]] = frozenset(
        {"phone", "credit_card", "iban", "us_ssn", "ip_address"}
    )

    def __init__(self, kinds: Iterable[str] | None = None) -> None:
        self._kinds = select_kinds(kinds, self.KINDS, self.name)

    def scan(self, text: str) -> list[Finding]:
        kinds = self._kinds
        found: list[Finding] = []
        if "email" in kinds and "@" in text:
            found += self._emails(text)
        if kinds & self._NUMERIC:
            found += self._numbers(text, kinds)
        if "ip_address" in kinds and ("::" in text or _IPV6_HINT.search(text)):
            found += self._ipv6(text)
        if kinds & {"postal_address", "person_name"}:
            present = words(text.lower())
            if "postal_address" in kinds:
                found += _addresses(text, present)
            if "person_name" in kinds:
                found += _names(text, present)
        return _dedupe(found)

    def _emails(self, text: str) -> Iterator[Finding]:
        n, at = len(text), text.find("@")
        while at != -1:
            # Only the neighbourhood of each "@": a local part is at most 64 characters.
            for m in _EMAIL.finditer(text, max(0, at - 64), min(n, at + 256)):
                # "git@host:owner/repo" is an scp-style remote, not a mailbox.
                if text.startswith(":", m.end()) and m.group().split("@")[0] in ("git", "hg"):
                    continue
                yield Finding(self.name, "email", m.start(), m.end(), 0.95)
            at = text.find("@", at + 1)

    def _numbers(self, text: str, kinds: frozenset[str]) -> list[Finding]:
        n = len(text)
        strong: list[Finding] = []
        phones: list[Finding] = []
        # "replace" keeps one byte per character, so positions stay those of the text.
        mask = text.encode("ascii", "replace").translate(_DIGIT_MASK)
        for run in _RUN.finditer(mask):
            s, e = run.start(), run.end()
            if _inside_token(text, s) or _DATE.fullmatch(text, s, e):
                continue
            lo, hi = max(0, s - 2), min(n, e + 12)
            digits = run.group().count(b"0")
            if "credit_card" in kinds and digits >= 12:
                strong += self._cards(text, lo, hi)
            if "iban" in kinds and digits >= 6:
                strong += self._ibans(text, max(0, s - 12), min(n, e + 40))
            if "us_ssn" in kinds and digits >= 9:
                strong += self._ssns(text, lo, hi)
            if "ip_address" in kinds and digits >= 4 and b"." in run.group():
                strong += self._ipv4(text, lo, hi)
            if "phone" in kinds and digits >= 7:
                phones += self._phones(text, lo, hi)
        # A phone pattern also matches inside an IBAN or a card; the checksum wins.
        phones = [p for p in phones if not any(p.start < f.end and f.start < p.end for f in strong)]
        return strong + phones

    def _cards(self, text: str, lo: int, hi: int) -> Iterator[Finding]:
        for m in _CARD.finditer(text, lo, hi):
            raw = m.group()
            digits = raw.replace(" ", "").replace("-", "")
            if not luhn_ok(digits):
                continue
            groups = _CARD_SEPARATOR.split(raw)
            if len(groups) > 1 and (len(groups[0]) != 4 or (" " in raw and "-" in raw)):
                continue  # people type a card in groups of four, with one kind of separator
            told = _context(text, m.start(), _CARD_CONTEXT)
            if not (card_brand_ok(digits) or told):
                continue  # an unknown issuer prefix passes only where a card is mentioned
            sure = card_brand_ok(digits) and (len(digits) >= 14 or told)
            yield Finding(self.name, "credit_card", m.start(), m.end(), 0.95 if sure else 0.6)

    def _ibans(self, text: str, lo: int, hi: int) -> Iterator[Finding]:
        for m in _IBAN.finditer(text, lo, hi):
            if iban_ok(m.group().replace(" ", "")):
                yield Finding(self.name, "iban", m.start(), m.end(), 0.98)

    def _ssns(self, text: str, lo: int, hi: int) -> Iterator[Finding]:
        for m in _SSN.finditer(text, lo, hi):
            if not ssn_ok(m.group(1), m.group(3), m.group(4)):
                continue
            told = _context(text, m.start(), _SSN_CONTEXT)
            if m.group(2) == " " and not told:
                continue
            yield Finding(self.name, "us_ssn", m.start(), m.end(), 0.95 if told else 0.8)

    def _ipv4(self, text: str, lo: int, hi: int) -> Iterator[Finding]:
        for m in _IPV4.finditer(text, lo, hi):
            if _VERSION_BEFORE.search(text, max(0, m.start() - 9), m.start()):
                continue  # "v1.2.3.4", "rv:1.9.0.20", "Firefox/1.2.3.4", "version 10.0.0.1"
            address = ipaddress.IPv4Address(m.group())
            if address.is_unspecified or address.is_loopback or m.group().startswith("255."):
                continue  # 0.0.0.0, 127.x and netmasks identify nobody
            confidence = 0.6 if address.is_private else 0.9
            yield Finding(self.name, "ip_address", m.start(), m.end(), confidence)

    def _ipv6(self, text: str) -> Iterator[Finding]:
        for m in _IPV6.finditer(text):
            raw = m.group()
            if len(raw) < 6 or not any(c.isdigit() for c in raw):
                continue
            if "::" not in raw and raw.count(":") != 7:
                continue
            try:
                address = ipaddress.IPv6Address(raw)
            except ValueError:
                continue
            if address.is_loopback or address.is_unspecified:
                continue
            yield Finding(self.name, "ip_address", m.start(), m.end(), 0.9)

    def _phones(self, text: str, lo: int, hi: int) -> Iterator[Finding]:
        matched = False
        for m in _PHONE.finditer(text, lo, hi):
            raw = m.group()
            digits = sum(c.isdigit() for c in raw.split("x")[0].split("ext")[0])
            if not 7 <= digits <= 15 or _DATE.fullmatch(raw) or _IPV4.fullmatch(raw):
                continue
            told = _context(text, m.start(), _PHONE_CONTEXT, end=m.end())
            if raw.startswith("00") and raw.isdigit() and not told:
                continue  # a bare run of digits is a phone number only if we are told so
            matched = True
            sure = told or raw[0] in "+(" or raw.startswith("00")
            yield Finding(self.name, "phone", m.start(), m.end(), 0.9 if sure else 0.7)
        if not matched:
            for m in _TOLD_PHONE.finditer(text, lo, hi):
                if _context(text, m.start(), _PHONE_CONTEXT, reach=30, end=m.end()):
                    yield Finding(self.name, "phone", m.start(), m.end(), 0.75)


def _addresses(text: str, present: frozenset[bytes]) -> Iterator[Finding]:
    suffixes = [c for w in present & _SUFFIX_WORDS for c in _SUFFIX_CASED[w]]
    streets = [m.span() for m in search_near(_STREET, text, suffixes, reach=90)]
    military = [_MILITARY[w] for w in present & _MILITARY_WORDS]
    streets += [m.span() for m in search_near(_MILITARY_LINE, text, military, reach=40)]
    cities = [
        c.span()
        for hint in _CITY_HINTS
        for m in hint.finditer(text)
        for c in _CITY_LINE.finditer(text, max(0, m.start() - 60), m.end())
    ]
    used: set[tuple[int, int]] = set()
    for start, end in sorted(set(streets)):
        city = next((c for c in cities if 0 <= c[0] - end <= 3), None)
        if city is not None:
            used.add(city)
            yield Finding("pii", "postal_address", start, city[1], 0.9)
        else:
            yield Finding("pii", "postal_address", start, end, 0.6)
    for city in sorted(set(cities)):
        if city not in used:
            yield Finding("pii", "postal_address", city[0], city[1], 0.7)


def _names(text: str, present: frozenset[bytes]) -> Iterator[Finding]:
    cues = [c for w in present & _PERSON_WORDS for c in _PERSON_CUES[w]]
    for m in search_near(_PERSON, text, cues, reach=60):
        if m.group(1).split()[0] not in _NOT_NAMES:
            yield Finding("pii", "person_name", m.start(1), m.end(1), 0.7)


def _dedupe(found: list[Finding]) -> list[Finding]:
    """One finding per (kind, span): a run's windows overlap, so a match can repeat."""
    seen: set[tuple[str, int, int]] = set()
    out: list[Finding] = []
    for f in sorted(found, key=lambda f: (f.start, -f.end)):
        key = (f.kind, f.start, f.end)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
