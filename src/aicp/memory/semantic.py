"""The semantic cache's decision: similar enough, and the same key facts.

Similarity alone cannot tell "the capital of France" from "the capital of
Germany" once the question is long, nor "5 miles" from "7 miles" at any
length: static embeddings weigh a number or a "not" next to nothing. So a
candidate above the threshold must also pass the near-miss guard, which
compares the *key facts* of both texts and rejects any difference:

- numbers: digits (1,000 = 1000, 3.50 = 3.5) and written ones (twenty-five, first, half)
- units and currencies: km, miles, celsius, %, $, EUR ... (km = kilometres)
- names: capitalised words that are not common English, acronyms, known
  technologies, languages, months and weekdays, and words next to "function",
  "method", "library" ... Compared case-blind over the words of both texts, so
  "paris" matches "Paris", and in order, so "from Paris to Rome" is not "from
  Rome to Paris"
- quoted strings and code identifiers (snake_case, dotted.names, calls(), --flags);
  camelCase counts as a name
- negations (not, never, without, n't ...), counted
- comparisons (more/less, before/after, max/min, ascending/descending ...)
- contrasts: one of a pair like buy/sell, upload/download, husband/wife
- question words, when both texts have some (why is not when)
- word order: the same words with two of them exchanged ("list to a set", "set to a list")

Both texts are embedded as `embedding_text`: lower case, punctuation and
filler (articles, "please", "could you") dropped, which is what lets
politeness, case and punctuation changes reach the threshold.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aicp.errors import ConfigError
from aicp.memory.vectors import ANYONE, Scope, VectorIndex

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from aicp.memory.cache_key import SemanticRequest
    from aicp.memory.embed import Embedder

    Vector = npt.NDArray[np.float32]

DEFAULT_THRESHOLD = 0.92
RSQUO = "\u2019"  # the typographic apostrophe


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Dropped before embedding: they change the wording, never the question.
FILLER = _words(
    "a an the please kindly pls plz could would can will you your u me i my we our us "
    "tell show give let know like want need wanted wondering wonder hey hi hello thanks thank "
    "just really quick quickly question help do does did is are was were be been am it its "
    "this that there some any about of to for in on at by as with from into so id im "
    "explain describe"
)

#: Capitalised at the start of a sentence without being a name.
COMMON = FILLER | _words(
    "what whats how hows why when where who whom whose which and or but if then also now "
    "write list find make create generate suggest recommend define name provide share compare "
    "translate convert calculate summarize summarise give get set use using should shall may "
    "might must has have had yes ok okay hmm well here these those they them he she his her "
    "roughly about approximately exactly all every each many much more most other another "
    "best good new old first last next after before is isnt dont doesnt cant wont why "
    "in on for to at by of with"
)

#: Names however they are written (lower-case "python" is still a language).
KNOWN = _words(
    "python javascript typescript java kotlin scala rust golang ruby php perl swift haskell "
    "elixir erlang clojure lua dart julia matlab fortran cobol bash zsh powershell sql c++ c# "
    "react vue angular svelte django flask fastapi rails laravel spring express nextjs nodejs "
    "node deno numpy pandas pytorch tensorflow keras postgres postgresql mysql sqlite mongodb "
    "redis kafka docker kubernetes terraform ansible aws gcp azure linux windows macos ios "
    "android git github excel "
    "january february march april june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday "
    "english french spanish german italian portuguese russian chinese japanese korean arabic "
    "hindi dutch polish swedish turkish greek"
)

#: A word next to one of these is a name: "the zip function", "the library requests".
CUES = _words(
    "function functions method methods class module package library command keyword flag "
    "option attribute property variable field parameter argument decorator operator builtin "
    "hook endpoint column table tag element extension plugin crate gem"
)

NEGATIONS = _words(
    "not no never without none nothing nobody nowhere neither nor cannot except unless "
    "excluding exclude lacking"
)

QUESTIONS = _words("what how why when where who which whom whose")


def _classes(groups: str) -> dict[str, str]:
    """`"more: more greater; less: less fewer"` as {word: class}."""
    table: dict[str, str] = {}
    for group in groups.split(";"):
        name, words = group.split(":")
        table.update(dict.fromkeys(words.split(), name.strip()))
    return table


#: One word of a pair whose other half would change the question ("buy" for "sell").
CONTRASTS = _words(
    "buy sell open close start stop enable disable add remove install uninstall encrypt "
    "decrypt encode decode compress decompress import export upload download push pull input "
    "output read write send receive client server frontend backend sync async lock unlock "
    "connect disconnect mount unmount inbound outbound incoming outgoing horizontal vertical "
    "row rows column columns top bottom inside outside plus minus positive negative odd even "
    "left right north south east west male female man woman men women husband wife mother "
    "father son daughter boy girl brother sister he she his him her cat cats dog dogs hot cold "
    "summer winter uppercase lowercase win lose true false accept reject allow deny public "
    "private"
)

COMPARISONS = _classes(
    "more: more greater larger bigger higher above over exceed exceeds exceeding;"
    "less: less fewer smaller lower below under beneath;"
    "max: max maximum most largest biggest highest greatest;"
    "min: min minimum least smallest lowest fewest;"
    "before: before earlier prior preceding until;"
    "after: after later following since;"
    "asc: ascending increasing increase; desc: descending decreasing decrease;"
    "fast: faster fastest quicker; slow: slower slowest;"
    "cheap: cheaper cheapest; dear: expensive pricier;"
    "new: newer newest latest; old: older oldest;"
    "long: longer longest; short: shorter shortest;"
    "good: better best; bad: worse worst"
)

#: Units after a number only: alone they are ordinary words ("in", "m").
SHORT_UNITS = _classes(
    "m: m; g: g; l: l; s: s sec secs; h: h hr hrs; min: min mins; in: in; c: c; f: f; k: k"
)
UNITS = _classes(
    "km: km kms kilometer kilometers kilometre kilometres; mi: mi mile miles;"
    "m: meter meters metre metres; cm: cm centimeter centimeters centimetre centimetres;"
    "mm: mm millimeter millimeters; ft: ft foot feet; in: inch inches; yd: yd yard yards;"
    "kg: kg kgs kilo kilos kilogram kilograms; g: gram grams; lb: lb lbs pound pounds;"
    "oz: oz ounce ounces; t: ton tons tonne tonnes; l: liter liters litre litres;"
    "ml: ml milliliter milliliters; gal: gallon gallons; c: celsius centigrade; f: fahrenheit;"
    "k: kelvin; mph: mph; kmh: kph kmh; s: second seconds; min: minute minutes;"
    "h: hour hours; day: day days; week: week weeks; month: month months; year: year years;"
    "%: % percent percentage; usd: $ usd dollar dollars; eur: € eur euro euros;"
    "gbp: £ gbp sterling; jpy: ¥ jpy yen; inr: ₹ inr rupee rupees; b: byte bytes;"
    "kb: kb kilobyte kilobytes; mb: mb megabyte megabytes; gb: gb gigabyte gigabytes;"
    "tb: tb terabyte terabytes; w: watt watts; kw: kw kilowatt kilowatts; v: volt volts;"
    "cal: calorie calories kcal"
)

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen "
_ONES += "fourteen fifteen sixteen seventeen eighteen nineteen"
_ORDINALS = "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
_ORDINALS += "twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
NUMBER_WORDS = {w: i for i, w in enumerate(_ONES.split())}
NUMBER_WORDS.update({w: i for i, w in enumerate(_ORDINALS.split()) if i})
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
NUMBER_WORDS.update({w: 10 * i for i, w in enumerate(_TENS.split(), 2)})
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
FRACTIONS = {"half": "0.5", "quarter": "0.25", "dozen": "12"}

_TOKEN = re.compile(r"\d+(?:[.,:/]\d+)*|[^\W\d_]+(?:\+\+|#)?(?:['\u2019][^\W\d_]+)?|[$€£¥₹%]")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_QUOTED = re.compile(
    r"\"([^\"]{1,200})\"|“([^”]{1,200})”|`([^`]{1,200})`|(?<!\w)'([^']{1,200})'(?!\w)"
)
_CODE = re.compile(r"(--?[A-Za-z][\w-]*)|([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\()?")


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What must be equal between a question and a cached one, from `key_facts`."""

    numbers: tuple[str, ...]
    units: tuple[str, ...]
    quoted: tuple[str, ...]
    identifiers: tuple[str, ...]
    negations: int
    comparisons: tuple[str, ...]
    contrasts: tuple[str, ...]
    questions: frozenset[str]
    names: frozenset[str]
    words: str  # the text's lower-case words, for comparing `names` case-blind


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    passed: bool
    differences: tuple[str, ...]  # the kinds of fact that differ, never their values


def embedding_text(text: str) -> str:
    """`text` as it is embedded: lower case, words only, filler dropped."""
    words = [w.replace("'", "").replace(RSQUO, "") for w in _TOKEN.findall(text.lower())]
    kept = [w for w in words if w not in FILLER]
    return " ".join(kept or words)


def key_facts(text: str, common: Container[str] | None = None) -> KeyFacts:
    """The facts of `text` that the guard compares (about 60 µs for a 30-word question).

    With `common` (lower-case words of the language, e.g. a tokenizer's whole
    words), any other lower-case word also counts as a name: "cannes", "kubectl".
    """
    tokens = _TOKEN.findall(text)
    apostrophes = [t.lower().replace(RSQUO, "'") for t in tokens]
    lower = [w[:-2] if w.endswith("'s") else w for w in apostrophes]
    numbers, units, comparisons, names = _numbers(lower), [], [], set()
    negations = 0
    for i, (raw, word) in enumerate(zip(tokens, lower, strict=True)):
        after_number = i > 0 and lower[i - 1][0].isdigit()
        unit = UNITS.get(word) or (SHORT_UNITS.get(word) if after_number else None)
        if unit is not None:
            units.append(unit)
        if word in NEGATIONS or apostrophes[i].endswith("n't"):
            negations += 1
        if word in COMPARISONS:
            comparisons.append(COMPARISONS[word])
        if _is_name(raw, word) or (common is not None and _is_rare(word, common)):
            names.add(word)
        if word in CUES:
            names.update(w for w in lower[max(i - 1, 0) : i + 2 : 2] if _cue_target(w))
    quoted = tuple(
        " ".join(next(g for g in m.groups() if g).split()) for m in _QUOTED.finditer(text)
    )
    return KeyFacts(
        numbers=tuple(numbers),
        units=tuple(units),
        quoted=quoted,
        identifiers=_identifiers(text),
        negations=negations,
        comparisons=tuple(comparisons),
        contrasts=tuple(w for w in lower if w in CONTRASTS),
        questions=frozenset(w for w in lower if w in QUESTIONS),
        names=frozenset(names),
        words=" ".join(lower),
    )


def compare(query: KeyFacts, cached: KeyFacts) -> GuardVerdict:
    """Pass when every kind of key fact agrees."""
    differences = [kind for kind in KINDS if getattr(query, kind) != getattr(cached, kind)]
    if query.questions and cached.questions and query.questions != cached.questions:
        differences.append("questions")
    names = query.names | cached.names
    if names and _occurrences(query, names) != _occurrences(cached, names):
        differences.append("names")
    if _swapped(query, cached):
        differences.append("order")
    return GuardVerdict(not differences, tuple(differences))


#: Words another kind of fact covers (km, seventeen, without): never names as well.
OTHER_FACTS = frozenset(UNITS) | NUMBER_WORDS.keys() | COMPARISONS.keys() | CONTRASTS | NEGATIONS

KINDS = ("numbers", "units", "quoted", "identifiers", "negations", "comparisons", "contrasts")


def _swapped(a: KeyFacts, b: KeyFacts) -> bool:
    """The same words but two of them exchanged across others: "the dog chases the
    cat", "the cat chases the dog". Neighbours do not count ("France's capital")."""
    x, y = _content(a), _content(b)
    if len(x) != len(y) or [w for _, w in x] == [w for _, w in y]:
        return False
    at = [i for i, (p, q) in enumerate(zip(x, y, strict=True)) if p[1] != q[1]]
    if len(at) != 2:
        return False
    i, j = at
    crossed = x[i][1] == y[j][1] and x[j][1] == y[i][1]
    return crossed and x[j][0] - x[i][0] > 1 and y[j][0] - y[i][0] > 1


def _content(facts: KeyFacts) -> list[tuple[int, str]]:
    return [(n, w) for n, w in enumerate(facts.words.split()) if w not in FILLER]


def _identifiers(text: str) -> tuple[str, ...]:
    """snake_case, dotted.names (not e.g.), calls() and --flags, as written."""
    found: list[str] = []
    for chunk in text.split():
        # Cheap tests first: most words have none of these.
        if "_" not in chunk and "." not in chunk and "(" not in chunk and chunk[0] != "-":
            continue
        for flag, name, call in _CODE.findall(chunk):
            dotted = "." in name and max(len(part) for part in name.split(".")) > 1
            if flag or call or dotted or "_" in name:
                found.append(flag or name)
    return tuple(found)


def _occurrences(facts: KeyFacts, names: frozenset[str]) -> list[str]:
    return [w for w in facts.words.split() if w in names]


def _is_name(raw: str, word: str) -> bool:
    if word in KNOWN:
        return True
    if not raw[0].isalpha() or word in COMMON or word.endswith("n't"):
        return False
    if word.split("'")[0] in COMMON:  # I'm, we've
        return False
    return any(c.isupper() for c in raw)  # Paris, iPhone, NASA


def _is_rare(word: str, common: Container[str]) -> bool:
    if word in common or not word.isalpha() or word in COMMON or word in OTHER_FACTS:
        return False
    return len(word) > 2


def _cue_target(word: str) -> bool:
    return word[0].isalpha() and word not in COMMON and word not in CUES


def _numbers(words: list[str]) -> list[str]:
    """Every number in order, digits and words alike, as canonical strings."""
    found: list[str] = []
    total = current = 0
    spelled = scaled = False
    for word in [*words, ""]:
        if word in NUMBER_WORDS or (spelled and word in SCALES):
            spelled, scaled = True, word in SCALES
            if scaled:
                scale = SCALES[word]
                current = max(current, 1) * scale
                if scale > 100:
                    total, current = total + current, 0
            else:
                current += NUMBER_WORDS[word]
            continue
        if scaled and word == "and":  # one hundred and five
            continue
        if spelled:
            found.append(str(total + current))
            total = current = 0
            spelled = scaled = False
        if word[:1].isdigit():
            found.append(_canonical_number(word))
        elif word in FRACTIONS:
            found.append(FRACTIONS[word])
    return found


def _canonical_number(text: str) -> str:
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    if "." in text and text.replace(".", "", 1).isdigit():
        text = text.rstrip("0").rstrip(".") or "0"
    return text


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a lookup hit or missed, for the receipt."""

    hit: bool
    entry_id: str | None
    score: float | None  # the best candidate's similarity; None when none reached the threshold
    threshold: float
    guard: GuardVerdict | None  # on the entry served, or the last candidate turned down
    rejected: int  # candidates the guard turned down

    def as_dict(self) -> dict[str, object]:
        return {
            "hit": self.hit,
            "entry_id": self.entry_id,
            "score": None if self.score is None else round(self.score, 4),
            "threshold": self.threshold,
            "guard": None if self.guard is None else list(self.guard.differences),
            "rejected": self.rejected,
        }


class SemanticCache:
    """Embedding, index and guard together: `embed` a question, `lookup`, then `add`.

    `thresholds` overrides `threshold` per model. Up to `candidates` entries
    above the threshold are tried, best first, until one passes the guard.
    `common_words` (from `WordLlamaEmbedder.common_words`) makes the guard
    treat rarer lower-case words as names; entries must be added with the
    same words as they are looked up with.
    """

    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex[KeyFacts],
        *,
        threshold: float = DEFAULT_THRESHOLD,
        thresholds: Mapping[str, float] | None = None,
        candidates: int = 4,
        guard: bool = True,
        prepare: Callable[[str], str] = embedding_text,
        common_words: Container[str] | None = None,
    ) -> None:
        self.thresholds = dict(thresholds or {})
        for name, value in {"default": threshold, **self.thresholds}.items():
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"semantic cache threshold for {name} must be in (0, 1]")
        if embedder.dims != index.dims:
            raise ConfigError(f"the embedder gives {embedder.dims} dims, the index {index.dims}")
        self.embedder, self.index, self.threshold = embedder, index, threshold
        self.candidates, self.guard, self.prepare = candidates, guard, prepare
        self.common_words = common_words

    def threshold_for(self, model: str) -> float:
        return self.thresholds.get(model, self.threshold)

    async def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One row per text (the last user turns), embedded as `prepare` has them."""
        return await self.embedder.aembed([self.prepare(t) for t in texts])

    def lookup(
        self,
        model: str,
        request: SemanticRequest,
        vector: Vector,
        *,
        now: float,
        sensitivity: str,
        scope: Scope = ANYONE,
        threshold: float | None = None,
    ) -> Evidence:
        """The cached entry that answers `request`, if any, with the evidence."""
        limit = threshold if threshold is not None else self.threshold_for(model)
        found = self.index.matches(
            model,
            vector,
            limit,
            now=now,
            sensitivity=sensitivity,
            context=request.context,
            scope=scope,
            limit=self.candidates,
        )
        if not found:
            return Evidence(False, None, None, limit, None, 0)
        facts = key_facts(request.text, self.common_words) if self.guard else None
        verdict: GuardVerdict | None = None
        for rejected, match in enumerate(found):
            verdict = compare(facts, match.payload) if facts is not None else None
            if verdict is None or verdict.passed:
                return Evidence(True, match.id, match.score, limit, verdict, rejected)
        return Evidence(False, None, found[0].score, limit, verdict, len(found))

    def add(
        self,
        entry_id: str,
        model: str,
        request: SemanticRequest,
        vector: Vector,
        *,
        sensitivity: str,
        expires_at: float,
        scope: Scope = ANYONE,
    ) -> None:
        """Index a stored answer under the question it answered."""
        self.index.add(
            entry_id,
            model,
            vector,
            key_facts(request.text, self.common_words),
            context=request.context,
            sensitivity=sensitivity,
            expires_at=expires_at,
            scope=scope,
        )
