"""Personal data generated with Faker, planted in sentences people write.

The dev split uses one seed and the test split another, so the reported figures come
from values nobody looked at while tuning. Near misses (a card failing Luhn, an IBAN
failing mod 97, an SSN the SSA never issues) are negatives: a checksum must reject them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from aicp.guardrails.eval.samples import DEV, Sample, planted

if TYPE_CHECKING:
    from faker import Faker

SEEDS = {DEV: 1001, "test": 2002}
PER_KIND = 150
PHONE_LOCALES = (
    "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_IN", "pt_BR", "en_AU",
    "en_CA",
)  # fmt: skip
IBAN_LOCALES = ("de_DE", "fr_FR", "en_GB", "nl_NL", "it_IT", "es_ES", "pl_PL", "pt_PT", "fi_FI")

TEMPLATES: dict[str, tuple[str, ...]] = {
    "email": (
        "Please forward the contract to {v} before Friday.",
        "My email is {v}, write me if anything changes.",
        "Can you draft a reply to {v} thanking them for the quick answer?",
        "Contact: {name} <{v}>",
        "I tried signing up with {v} but never got the confirmation.",
        "cc {v} on the invoice thread please",
        "The report was sent from {v} at 09:14.",
        "Add {v} to the mailing list and remove the old address.",
    ),
    "phone": (
        "Call me at {v} tomorrow after 3.",
        "My phone number is {v}.",
        "Tel: {v}",
        "You can reach our office on {v} during business hours.",
        "Please text {v} when you arrive at the gate.",
        "Contact: {name}, {v}",
        "If the delivery is late, ring {v} and ask for the warehouse.",
        "The customer left {v} as a callback number.",
        "Her mobile is {v} but she prefers email.",
        "WhatsApp me on {v} if the train is delayed.",
    ),
    "credit_card": (
        "My card number is {v}, expiry 08/27.",
        "Charge {v} for the remaining balance.",
        "Card: {v} (Visa), please don't store it.",
        "Why was my payment with {v} declined?",
        "I paid with {v} yesterday and was billed twice.",
        "Use the card ending in the number {v} for the renewal.",
    ),
    "iban": (
        "Please transfer the deposit to IBAN {v}.",
        "My bank account is {v}, name as on the invoice.",
        "Refund to {v} please.",
        "IBAN: {v}\nBIC: see attachment",
        "The supplier changed their account to {v}; is that legitimate?",
        "Pay the rent into {v} by the 3rd of each month.",
    ),
    "us_ssn": (
        "My SSN is {v}.",
        "Social security number: {v}",
        "The form asks for the applicant's SSN ({v}) twice.",
        "Employee {name}, SSN {v}, start date 1 March.",
        "Is it safe to email {v} to the accountant for my tax return?",
        "Taxpayer ID {v} appears on page 2 of the W-2.",
    ),
    "ip_address": (
        "The server at {v} stopped answering pings this morning.",
        "Block {v} in the firewall, it's scanning our ports.",
        "Our VPN assigns {v} to my laptop.",
        "Failed login attempts from {v} over the last hour.",
        "ssh admin@{v} hangs after the key exchange.",
        "Add {v} to the allowlist for the staging API.",
    ),
    "postal_address": (
        "Please ship the order to {v}.",
        "My address is {v}.",
        "Send the signed copy to:\n{v}",
        "The invoice should show {v} as the billing address.",
        "We moved to {v} last month, update the records.",
        "Deliver to {v}, leave it with the neighbour if nobody answers.",
    ),
    "person_name": (
        "Dear {v},\n\nthank you for your order.",
        "Please send the contract to {v} by Friday.",
        "My name is {v} and I'd like to change my booking.",
        "Mr. {v} called about the invoice.",
        "Best regards,\n{v}",
        "{v} will join the meeting at 10.",
        "Can you write a birthday message for {v}?",
        "Attn: {v}, Accounts Payable",
    ),
}


def _values(fakes: dict[str, Faker], rnd: random.Random, kind: str) -> Callable[[], str]:
    fake = fakes["en_US"]
    makers: dict[str, Callable[[], str]] = {
        "email": lambda: rnd.choice((fake.email, fake.company_email, fake.free_email))(),
        "phone": lambda: fakes[rnd.choice(PHONE_LOCALES)].phone_number(),
        "credit_card": lambda: _group(fake.credit_card_number(), rnd),
        "iban": lambda: _group(fakes[rnd.choice(IBAN_LOCALES)].iban(), rnd),
        "us_ssn": fake.ssn,
        "ip_address": lambda: rnd.choice((fake.ipv4_public, fake.ipv4_private, fake.ipv6))(),
        "postal_address": lambda: _one_line(fake.address(), rnd),
        "person_name": lambda: rnd.choice((fake.name, fake.first_name, fake.last_name))(),
    }
    return makers[kind]


def _group(number: str, rnd: random.Random) -> str:
    """Compact, or in groups of four as people type them."""
    if rnd.random() < 0.5:
        return number
    sep = rnd.choice((" ", " ", "-")) if number[0].isdigit() else " "
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


def _one_line(address: str, rnd: random.Random) -> str:
    return address if rnd.random() < 0.5 else address.replace("\n", ", ")


def fakers(seed: int) -> dict[str, Faker]:
    from faker import Faker  # a development dependency: only the evaluation needs it

    made = {}
    for locale in {"en_US", *PHONE_LOCALES, *IBAN_LOCALES}:
        made[locale] = Faker(locale)
        made[locale].seed_instance(seed)
    return made


def pii_samples(split: str, per_kind: int = PER_KIND) -> Iterator[Sample]:
    seed = SEEDS[split]
    fakes = fakers(seed)
    fake = fakes["en_US"]
    rnd = random.Random(seed)
    for kind, templates in TEMPLATES.items():
        make = _values(fakes, rnd, kind)
        for i in range(per_kind):
            text, span = planted(templates[i % len(templates)], make(), name=fake.name())
            yield Sample(text, f"faker {kind}", split, True, "pii", kind, span)
    yield from _near_misses(split, fakes, rnd, per_kind)


def _near_misses(
    split: str, fakes: dict[str, Faker], rnd: random.Random, n: int
) -> Iterator[Sample]:
    fake = fakes["en_US"]
    for i in range(n):
        card = fake.credit_card_number()
        broken = card[:-1] + str((int(card[-1]) + 1 + rnd.randrange(9)) % 10)
        text, _ = planted(TEMPLATES["credit_card"][i % 6], _group(broken, rnd))
        yield Sample(text, "near-miss card (Luhn fails)", split, False, "pii")
        iban = fakes[rnd.choice(IBAN_LOCALES)].iban()
        at = rnd.randrange(4, len(iban))
        if iban[at].isdigit():
            iban = iban[:at] + str((int(iban[at]) + 1 + rnd.randrange(9)) % 10) + iban[at + 1 :]
        else:
            iban = iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]
        text, _ = planted(TEMPLATES["iban"][i % 6], _group(iban, rnd))
        yield Sample(text, "near-miss IBAN (mod 97 fails)", split, False, "pii")
        area = rnd.choice(("000", "666", str(rnd.randrange(900, 1000))))
        ssn = f"{area}-{rnd.randrange(1, 100):02d}-{rnd.randrange(1, 10000):04d}"
        text, _ = planted(TEMPLATES["us_ssn"][i % 6], ssn, name="on probation")
        yield Sample(text, "near-miss SSN (never issued)", split, False, "pii")
