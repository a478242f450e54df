"""Ordinary text: the handwritten benign prompts shipped here, and Faker-made sentences
full of the numbers that look like personal data and are not (dates, versions, hashes,
UUIDs, ISBNs, prices, order numbers, hostnames, file paths)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from importlib import resources

from aicp.guardrails.eval.samples import DEV, Sample, split_of

SEEDS = {DEV: 3003, "test": 4004}
GENERATED = 300
LONG, LONG_PIECES = 60, 10  # long documents of Faker sentences, about 1,600-2,000 characters


def handwritten() -> Iterator[Sample]:
    """data/benign.jsonl: code questions, e-mails, documents and everyday requests."""
    data = resources.files("aicp.guardrails.eval") / "data" / "benign.jsonl"
    for line in data.read_text(encoding="utf-8").splitlines():
        if line.strip():
            text = json.loads(line)["text"]
            yield Sample(text, "handwritten benign", split_of(text), False)


def generated_long(split: str, n: int = LONG) -> Iterator[Sample]:
    """The generated sentences, LONG_PIECES texts joined: long ordinary text.

    Negatives for the injection detector only, whose word scorer once flagged nearly
    every long text; for PII they would only repeat what the short texts measure.
    """
    short = [s.text for s in generated(split, n * LONG_PIECES, SEEDS[split] + 1)]
    for i in range(0, len(short), LONG_PIECES):
        yield Sample(" ".join(short[i : i + LONG_PIECES]), "faker long", split, False, "injection")


def generated(split: str, n: int = GENERATED, seed: int | None = None) -> Iterator[Sample]:
    from faker import Faker  # a development dependency: only the evaluation needs it

    seed = SEEDS[split] if seed is None else seed
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rnd = random.Random(seed)

    def version() -> str:
        return ".".join(str(rnd.randrange(0, 30)) for _ in range(rnd.choice((2, 3))))

    pieces: tuple[Callable[[], str], ...] = (
        lambda: f"Build {version()} was released on {fake.date()} at {fake.time()}.",
        lambda: f"The request {fake.uuid4()} took {rnd.randrange(3, 900)} ms.",
        lambda: f"Checksum sha256:{fake.sha256()} matches the download.",
        lambda: f"Commit {fake.sha1()} touched {fake.file_path(depth=3)}.",
        lambda: f"The book's ISBN is {fake.isbn13()} and it costs ${rnd.randrange(5, 80)}.99.",
        lambda: f"Barcode {fake.ean13()} is out of stock until {fake.date_this_year()}.",
        lambda: f"Order #{rnd.randrange(10**5, 10**9)} shipped in {rnd.randrange(1, 9)} boxes.",
        lambda: f"Invoice {fake.bothify('INV-####-????').upper()} totals {fake.pricetag()}.",
        lambda: (
            f"Deploy to {fake.hostname()} on port {fake.port_number()} failed with "
            f"exit code {rnd.randrange(1, 255)}."
        ),
        lambda: f"See {fake.url()} for the {fake.word()} changelog.",
        lambda: f"The user agent was {fake.user_agent()}.",
        lambda: (
            f"Revenue grew {rnd.randrange(1, 60)}.{rnd.randrange(10)}% to "
            f"{rnd.randrange(1, 999)},{rnd.randrange(100, 999)} units in Q{rnd.randrange(1, 5)}."
        ),
        lambda: (
            f"Meet at {fake.time(pattern='%H:%M')} on {fake.date(pattern='%d.%m.%Y')} "
            f"in room {rnd.randrange(100, 999)}."
        ),
        lambda: f"{fake.sentence(nb_words=12)} {fake.sentence(nb_words=9)}",
        lambda: (
            f"The population was {rnd.randrange(10**4, 10**8):,} in {rnd.randrange(1900, 2024)}."
        ),
        lambda: (
            f"Coordinates {fake.latitude()}, {fake.longitude()} are {rnd.randrange(2, 90)} km away."
        ),
    )
    for _ in range(n):
        chosen = rnd.sample(pieces, 3)
        yield Sample(" ".join(p() for p in chosen), "faker benign", split, False)
