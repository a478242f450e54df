"""Deterministic text of the kinds people paste into chats: prose, code, logs, JSON, documents.

Every generator takes a `random.Random`, so a seed fixes the whole eval set; facts are
planted by the caller as exact strings that the checks look for afterwards.
"""

from __future__ import annotations

import json
import random

_SUBJECTS = (
    "the deploy pipeline",
    "our checkout service",
    "the nightly batch job",
    "the cache layer",
    "the billing team",
    "the mobile client",
    "this migration",
    "the search index",
    "the staging cluster",
    "the new scheduler",
    "the payment adapter",
    "the auth proxy",
)
_VERBS = (
    "reduces",
    "doubles",
    "breaks",
    "hides",
    "explains",
    "slows down",
    "simplifies",
    "depends on",
    "replaces",
    "duplicates",
    "protects",
    "invalidates",
)
_OBJECTS = (
    "the retry budget",
    "p99 latency",
    "the error rate",
    "memory use at peak",
    "the weekly report",
    "the connection pool",
    "cold starts",
    "the audit trail",
    "most of the alerts",
    "the rollout plan",
    "disk usage",
    "the on-call load",
)
_TAILS = (
    "when traffic spikes",
    "after the last release",
    "in the EU region",
    "for large tenants",
    "during the morning peak",
    "on every restart",
    "without anyone noticing",
    "once the queue backs up",
    "if the flag is on",
    "for about ten minutes",
)
_NAMES = ("parse", "load", "merge", "render", "fetch", "score", "index", "flush", "retry")
_NOUNS = ("order", "invoice", "session", "report", "token", "record", "batch", "user")
_SERVICES = ("checkout", "billing", "search", "auth", "gateway", "worker")


def sentence(rng: random.Random) -> str:
    return (
        f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} "
        f"{rng.choice(_OBJECTS)} {rng.choice(_TAILS)}."
    )


def prose(rng: random.Random, sentences: int) -> str:
    """Paragraphs of three to five sentences."""
    out: list[str] = []
    para: list[str] = []
    for _ in range(sentences):
        para.append(sentence(rng))
        if len(para) >= rng.randint(3, 5):
            out.append(" ".join(para))
            para = []
    if para:
        out.append(" ".join(para))
    return "\n\n".join(out)


def python_module(rng: random.Random, functions: int, fact: str = "") -> str:
    """A Python module: imports, a constant line (`fact`, when given) and functions."""
    lines = ["import logging", "from dataclasses import dataclass", "", "log = logging.getLogger()"]
    if fact:
        lines += ["", fact]
    for _ in range(functions):
        name = f"{rng.choice(_NAMES)}_{rng.choice(_NOUNS)}_{rng.randint(10, 999)}"
        arg = rng.choice(_NOUNS)
        lines += [
            "",
            "",
            f"def {name}({arg}: dict[str, object], limit: int = {rng.randint(2, 64)}):",
            f'    """{sentence(rng)}"""',
            "    out: list[str] = []",
            f"    for key, value in sorted({arg}.items()):",
            "        if len(out) >= limit:",
            f'            log.warning("{name}: limit %d reached", limit)',
            "            break",
            '        out.append(f"{key}={value!r}")',
            "    return out",
        ]
    return "\n".join(lines) + "\n"


def log_lines(rng: random.Random, lines: int, fact: str = "") -> str:
    """Service log lines; `fact`, when given, is one line in the middle."""
    out = []
    for i in range(lines):
        level = rng.choice(("INFO", "INFO", "INFO", "WARN", "ERROR"))
        out.append(
            f"2025-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
            f"{rng.randint(0, 59):02d}Z {level} service={rng.choice(_SERVICES)} "
            f"req={rng.getrandbits(48):012x} latency_ms={rng.randint(3, 2500)} "
            f"status={rng.choice((200, 200, 200, 201, 404, 500, 502))}"
        )
        if fact and i == lines // 2:
            out.append(fact)
    return "\n".join(out)


def json_document(rng: random.Random, records: int) -> str:
    data = [
        {
            "id": rng.getrandbits(32),
            "service": rng.choice(_SERVICES),
            "owner": rng.choice(_NOUNS),
            "limits": {"rpm": rng.randint(10, 5000), "burst": rng.randint(1, 100)},
            "enabled": rng.random() < 0.8,
        }
        for _ in range(records)
    ]
    return json.dumps(data, indent=2)


def markdown_document(rng: random.Random, sections: int, fact: str = "") -> str:
    """A design document: headed sections of prose, with `fact` as one sentence in it."""
    parts = ["# Design notes", ""]
    for k in range(sections):
        parts += [f"## {k + 1}. {rng.choice(_SUBJECTS).capitalize()}", "", prose(rng, 6), ""]
        if fact and k == sections // 2:
            parts += [fact, ""]
    return "\n".join(parts)


def messy(rng: random.Random, sentences: int) -> str:
    """Prose typed carelessly: double spaces, trailing spaces and long blank gaps."""
    words = prose(rng, sentences).split(" ")
    text = ""
    for word in words:
        text += word + rng.choice((" ", " ", " ", "  ", "   "))
    return text.replace("\n\n", "  \n\n\n\n\n")
