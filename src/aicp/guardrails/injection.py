"""Prompt injection and jailbreaks: weighted cues over normalised text, one score in [0, 1].

Each cue is a phrase family that attacks use ("ignore all previous instructions",
"no ethical restrictions", "repeat your system prompt") with a weight; the score is
their noisy-OR, 1 - prod(1 - w), so one strong cue or several weak ones cross the
threshold while a lone weak cue ("act as a reviewer") does not. A cue's regex runs
only when the text holds one of its anchor words, which one set intersection with
every cue's anchors decides. The cues themselves are in injection_cues.

Obfuscation is undone before matching: zero-width characters dropped, compatibility
forms folded (NFKC) and Cyrillic/Greek look-alikes mapped to Latin; characters of the
Unicode tag block (invisible ASCII) are decoded, as are base64 blobs, rot13 and Morse.
The obfuscation itself adds weight: a decoded text that holds even one weak cue counts.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from aicp.guardrails.base import Finding, search_near, words
from aicp.guardrails.injection_cues import (
    CUE_LINES,
    ENCODED,
    HOWTO,
    LIMIT_WORDS,
    PIECES,
    VERBS,
    WORDING,
)
from aicp.guardrails.injection_model import WordScorer


@dataclass(frozen=True, slots=True)
class _Cue:
    category: str
    weight: float
    anchors: frozenset[bytes]  # a match contains one of these words
    words: tuple[str, ...]  # the same, as text
    pattern: re.Pattern[str]
    reach: int  # how far a match extends on either side of its anchor word
    guarded: bool  # a match right after a how-to question does not count (HOWTO)


# A cue's regex runs only in windows around its anchor words, not over the whole text:
# an ordinary prompt holds a few anchors ("rules", "above"), and a window costs little.
_REACH = 120


def _compile_cues() -> tuple[_Cue, ...]:
    cues = []
    for category, lines in CUE_LINES.items():
        for line in lines:
            line = line.replace("{VERBS}", VERBS).replace("{LIMIT_WORDS}", LIMIT_WORDS)
            weight, anchors, pattern = line.split(";", 2)
            weight, _, reach = weight.partition("@")
            for name, piece in PIECES.items():
                pattern = pattern.replace("{" + name + "}", piece)
            words = tuple(anchors.split(","))
            guarded = pattern.startswith("{HOWTO}")
            compiled = re.compile(pattern.removeprefix("{HOWTO}"))
            cue = _Cue(
                category,
                float(weight),
                frozenset(w.encode() for w in words),
                words,
                compiled,
                int(reach or _REACH),
                guarded,
            )
            cues.append(cue)
    return tuple(cues)


_CUES = _compile_cues()


def _gates(cues: tuple[_Cue, ...]) -> dict[bytes, tuple[int, ...]]:
    """Anchor word -> the cues it gates: one set intersection a text, not one a cue."""
    gates: dict[bytes, tuple[int, ...]] = {}
    for index, cue in enumerate(cues):
        for word in cue.anchors:
            gates[word] = (*gates.get(word, ()), index)
    return gates


_GATES = _gates(_CUES)
_GATE_WORDS = frozenset(_GATES)
_HOWTO = re.compile(HOWTO)

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f"
# Look-alikes (Unicode's confusables, Cyrillic and Greek letters that render as Latin).
_CONFUSABLES = dict(
    (ord(pair[0]), pair[1])
    for pair in re.findall(
        "..",
        "\u0430a\u0432b\u0441c\u0501d\u0435e\u04bbh\u0456i\u0458j\u043ak\u043cm\u043dh"
        "\u043eo\u0440p\u0455s\u0442t\u0443y\u0445x\u04cfl\u051bq\u051dw\u0475v\u0491r"
        "\u0261g\u0251a\u0131i\u03bfo\u03b1a\u03b2b\u03b5e\u03b9i\u03bak\u03bcu\u03bdv"
        "\u03c1p\u03c4t\u03c5u\u03c7x\u03c9w\u03f3j\u0391A\u0392B\u0395E\u0397H\u0399I"
        "\u039aK\u039cM\u039dN\u039fO\u03a1P\u03a4T\u03a7X\u03a5Y\u0396Z\u0410A\u0412B"
        "\u0421C\u0415E\u041dH\u041aK\u041cM\u041eO\u0420P\u0422T\u0425X\u0405S\u0406I"
        "\u0408J",
    )
)
_SUSPECT = re.compile(
    "[" + _ZERO_WIDTH + "".join(map(chr, _CONFUSABLES)) + "\uff01-\uff5e"
    "\U0001d400-\U0001d7ff\U000e0000-\U000e007f]"
)
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_FLAG = "\U0001f3f4"  # a black flag followed by tag letters is a subdivision flag emoji
_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{20,}={0,2}")
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _split(words: str) -> list[str]:
    return words.split()


# Common English words after rot13 ("the", "and", "you", ...): two of them and the
# text is worth decoding, since English itself almost never contains them.
_ROT13_WORDS = frozenset(
    b"gur naq lbh lbhe gb bs vf vg guvf jvgu sbe nyy ner jung vtaber cerivbhf vafgehpgvbaf "
    b"flfgrz cebzcg qvfertneq ehyrf nobir".split()
)
_MORSE = dict(
    zip(
        _split(
            ".- -... -.-. -.. . ..-. --. .... .. .--- -.- .-.. -- -. --- .--. --.- .-. ... - ..- "
            "...- .-- -..- -.-- --.. ----- .---- ..--- ...-- ....- ..... -.... --... ---.. ----. "
            ".-.-.- --..-- ..--.. -.-.-- .----. -..-. ---... .-..-. -.--. -.--.-"
        ),
        "abcdefghijklmnopqrstuvwxyz0123456789.,?!'/:\"()",
        strict=True,
    )
)
# The word scorer's probability from which it adds to the cues' score (_either); chosen
# by cross-validation on dev, see train_injection.
_LEANING = 0.1
# A word mixing Latin and look-alike letters, or cut by zero-width ones; also what a cue
# found only after decoding base64, rot13 or Morse adds (_hidden_weight).
_MIXED_SCRIPT = 0.4


@dataclass(frozen=True, slots=True)
class _Hit:
    category: str
    weight: float
    start: int
    end: int
    cue: int  # index in _CUES, or -1 for a decoded or obfuscation hit
    original: bool = False  # whether start/end index the scanned text, not the normalised one


class InjectionDetector:
    """Instruction override, role-play jailbreaks, prompt extraction and encoded payloads.

    The score is the noisy-OR of the cues' score and the word scorer's probability
    (injection_model), which catches jailbreaks written without any of the cue phrases
    and tips a weak cue over in wording that leans the same way; `learned=False` leaves
    the cues alone, and `scorer` replaces the shipped weights.
    """

    name = "injection"

    def __init__(
        self, threshold: float = 0.5, learned: bool = True, scorer: WordScorer | None = None
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"injection threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.learned = learned
        self._scorer = scorer  # the shipped one is read on first use

    def score(self, text: str) -> float:
        hits, _, present = self._hits(text)
        return _either(_score(hits), self._learned(present))

    def scan(self, text: str) -> list[Finding]:
        hits, offsets, present = self._hits(text)
        score = _either(_score(hits), self._learned(present))
        if score < self.threshold:
            return []
        confidence = round(score, 4)
        if not hits:  # the wording as a whole, no phrase in particular
            return [Finding(self.name, WORDING, 0, 0, confidence)]
        first: dict[str, _Hit] = {}
        for hit in sorted(hits, key=lambda h: h.start):
            first.setdefault(hit.category, hit)
        out = []
        for hit in first.values():
            start, end = _original_span(hit, offsets)
            out.append(Finding(self.name, hit.category, start, end, confidence))
        return sorted(out, key=lambda f: f.start)

    def _learned(self, present: frozenset[bytes]) -> float:
        if not self.learned:
            return 0.0
        if self._scorer is None:
            self._scorer = WordScorer.shipped()
        return self._scorer.probability(present)

    def _hits(self, text: str) -> tuple[list[_Hit], list[int] | None, frozenset[bytes]]:
        norm, offsets, obfuscated = normalise(text)
        present = words(norm)
        hits = list(_match_cues(norm, present))
        hits += _obfuscation_hits(text, offsets, obfuscated, bool(hits))
        hits += _decoded_hits(text, norm, present, offsets is None)
        return hits, offsets, present


def _either(cues: float, learned: float) -> float:
    """Noisy-OR of the two parts: a weak cue and wording that leans one way add up.

    Below _LEANING the scorer is not leaning at all (a short role request scores about
    0.05), and its share would only tip cues that fall just short over the threshold.
    """
    if learned < _LEANING:
        return max(cues, learned)
    return 1.0 - (1.0 - cues) * (1.0 - learned)


def _score(hits: list[_Hit]) -> float:
    """Noisy-OR over distinct cues: the same phrase twice is not twice the evidence."""
    best: dict[tuple[int, str], float] = {}
    for hit in hits:
        key = (hit.cue, hit.category) if hit.cue >= 0 else (-1, f"{hit.category}{hit.start}")
        best[key] = max(best.get(key, 0.0), hit.weight)
    remaining = 1.0
    for weight in best.values():
        remaining *= 1.0 - weight
    return 1.0 - remaining


def _match_cues(norm: str, present: frozenset[bytes]) -> Iterator[_Hit]:
    gated = {index for word in present & _GATE_WORDS for index in _GATES[word]}
    for index in sorted(gated):
        cue = _CUES[index]
        needles = [w for w in cue.words if w.encode() in present]
        found = search_near(cue.pattern, norm, needles, cue.reach)
        m = next((m for m in found if not (cue.guarded and _asked_how(norm, m.start()))), None)
        if m:
            yield _Hit(cue.category, cue.weight, m.start(), m.end(), index)


def _asked_how(norm: str, start: int) -> bool:
    return _HOWTO.search(norm, max(0, start - 80), start) is not None


def normalise(text: str) -> tuple[str, list[int] | None, bool]:
    """Lower-cased, de-obfuscated text, and where each of its characters came from.

    The offsets are None when the text maps one to one (the usual case, and the
    fast one); `obfuscated` says whether look-alikes or zero-width characters were
    removed from inside a word.
    """
    lowered = text.lower()
    if text.isascii() or (len(lowered) == len(text) and not _SUSPECT.search(text)):
        return lowered, None, False
    out: list[str] = []
    offsets: list[int] = []
    obfuscated = False
    previous = ""
    for i, ch in enumerate(text):
        code = ord(ch)
        if ch in _ZERO_WIDTH or 0xE0000 <= code <= 0xE007F:
            obfuscated = obfuscated or (previous.isalpha() and ch in _ZERO_WIDTH)
            continue
        mapped = _CONFUSABLES.get(code)
        if mapped is not None:
            obfuscated = obfuscated or (previous.isascii() and previous.isalpha())
        else:
            mapped = unicodedata.normalize("NFKC", ch) if code > 0x7F else ch
        mapped = mapped.lower()
        out.append(mapped)
        offsets.extend([i] * len(mapped))
        previous = mapped[-1:] or previous
    return "".join(out), offsets, obfuscated


def _obfuscation_hits(
    text: str, offsets: list[int] | None, obfuscated: bool, matched: bool
) -> Iterator[_Hit]:
    if obfuscated and matched:
        yield _Hit(ENCODED, _MIXED_SCRIPT, 0, 0, -1, original=True)
    if offsets is None:
        return
    for m in _TAGS.finditer(text):
        run = m.group()
        if m.start() and text[m.start() - 1] == _FLAG and run.endswith("\U000e007f"):
            continue
        hidden = "".join(chr(ord(c) - 0xE0000) for c in run if 0xE0020 <= ord(c) <= 0xE007E)
        if hidden.strip():
            weight = max(0.9, _decoded_score(hidden.lower()))
            yield _Hit(ENCODED, weight, m.start(), m.end(), -1, original=True)


def _decoded_score(decoded: str) -> float:
    return _score(list(_match_cues(decoded, words(decoded))))


def _hidden_weight(score: float) -> float:
    """What decoded text weighs: an attack in full, or a cue that someone chose to hide.

    Hiding a phrase is evidence of its own, as for look-alike letters: a decoded text
    with any cue gets the obfuscation's weight on top (noisy-OR), no cue gets nothing.
    """
    if score >= 0.5:
        return max(0.9, score)
    return 1.0 - (1.0 - score) * (1.0 - _MIXED_SCRIPT) if score > 0.0 else 0.0


def _morse(text: str) -> str:
    """Morse code as text: letters split by spaces, words by " / " or three spaces."""
    out = []
    for word in re.split(r"\s*/\s*|\s{2,}", text.strip()):
        out.append("".join(_MORSE.get(sign, "") for sign in word.split()))
    return " ".join(out)


def _decoded_hits(text: str, norm: str, present: frozenset[bytes], aligned: bool) -> Iterator[_Hit]:
    """Attacks hidden in rot13, Morse code or base64 blobs, decoded and scored."""
    told = b"rot13" in present or b"rot" in present
    whole = [codecs.decode(norm, "rot13")] if told or len(present & _ROT13_WORDS) >= 2 else []
    marks = text.count(".") + text.count("-")
    if marks >= 20 and 2 * marks >= len(text) - text.count(" "):
        whole.append(_morse(text))
    for decoded in whole:
        weight = _hidden_weight(_decoded_score(decoded))
        if weight:
            yield _Hit(ENCODED, weight, 0, len(text), -1, original=True)
    for start, end in _blobs(text, norm, present, aligned):
        blob = text[start:end]
        try:
            plain = base64.b64decode(blob + "=" * (-len(blob) % 4)).decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if sum(c.isprintable() or c.isspace() for c in plain) < 0.95 * len(plain):
            continue
        weight = _hidden_weight(_decoded_score(plain.lower()))
        if weight:
            yield _Hit(ENCODED, weight, start, end, -1, original=True)


def _blobs(
    text: str, norm: str, present: frozenset[bytes], aligned: bool
) -> Iterator[tuple[int, int]]:
    """Spans of base64-looking runs of at least 20 characters.

    A blob holds a word of 16 or more letters and digits (between its "+" and "/"),
    so only texts with such a word are looked at, and then only around it.
    """
    long_words = [w.decode() for w in present if len(w) >= 16]
    if not long_words:
        return
    if not aligned:  # the normalised text is not the scanned one: look everywhere
        yield from (m.span() for m in _B64.finditer(text))
        return
    seen: set[int] = set()
    for word in long_words:
        at = norm.find(word)
        while at != -1:
            start = at
            while start and text[start - 1] in _B64_CHARS:
                start -= 1
            run = _B64.match(text, start)
            if run and start not in seen:
                seen.add(start)
                yield run.span()
            at = norm.find(word, at + len(word))


def _original_span(hit: _Hit, offsets: list[int] | None) -> tuple[int, int]:
    if hit.original or offsets is None:
        return hit.start, hit.end
    if not offsets:
        return 0, 0
    start = offsets[min(hit.start, len(offsets) - 1)]
    end = offsets[min(hit.end, len(offsets)) - 1] + 1 if hit.end else start
    return start, end
