"""Credentials: provider key formats, private keys, JWTs, passwords in URLs and assignments.

Most providers give their keys a fixed prefix, so one regex of all prefixed formats
(a literal-led alternation, which the regex engine scans quickly) finds them in one
pass. Three kinds have no prefix and wait for a cheap gate: a password in a URL for
"://", an AWS secret access key for a nearby "aws" word, and a generic assignment
(`password = ...`, `api_key: ...`) for one of its key words; the value of the last
must look random (Shannon entropy), so `password = getpass()` is not a secret.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import ClassVar

from aicp.guardrails.base import Finding, select_kinds

# Formats as the providers document them: (kind, a literal every such key contains,
# pattern). A pattern is scanned only when its literal is in the text (a plain `in`),
# and each starts with a literal, which the regex engine searches for almost as fast;
# one alternation of them all would be tried at every position instead.
_FORMATS: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (kind, gate, re.compile(pattern))
    for kind, gate, pattern in (
        ("anthropic_key", "sk-", r"sk-ant-(?:api|admin|oat)\d\d-[A-Za-z0-9_-]{32,}"),
        ("openai_key", "sk-", r"sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}"),
        ("stripe_key", "k_", r"sk_(?:live|test)_[A-Za-z0-9]{16,}"),
        ("stripe_key", "k_", r"rk_(?:live|test)_[A-Za-z0-9]{16,}"),
        ("google_api_key", "AI", r"AIza[0-9A-Za-z_-]{35}"),
        ("aws_access_key", "A", r"A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}"),
        ("github_token", "gh", r"gh[pousr]_[A-Za-z0-9]{36,251}"),
        ("github_token", "github_pat_", r"github_pat_[A-Za-z0-9_]{22,255}"),
        ("slack_token", "xox", r"xox[abposre]-[A-Za-z0-9-]{10,}"),
        ("gitlab_token", "glpat-", r"glpat-[A-Za-z0-9_-]{20,}"),
        ("huggingface_token", "hf_", r"hf_[A-Za-z0-9]{30,}"),
        ("npm_token", "npm_", r"npm_[A-Za-z0-9]{36}"),
        ("pypi_token", "pypi-", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
        ("sendgrid_key", "SG.", r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
        ("jwt", "eyJ", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
        (
            "slack_webhook",
            "hooks.slack.com",
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+-]{20,}",
        ),
        ("private_key", "-----BEGIN", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    )
)
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9_-]")
# The body of a PEM block: up to its END line, or as far as base64 lines go.
_PEM_REST = re.compile(
    r"[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|(?:\s*[A-Za-z0-9+/=:,-]+)*"
)
_URL_PASSWORD = re.compile(
    r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{1,20}://[^\s:/?#@\"'<>]*:([^\s/?#@\"'<>]+)@[\w.-]"
)
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
# Matched from where one of its stems starts ("api_key" from "key", "DB_PASSWORD" from
# "pass"): a plain find locates the stems, which costs less than scanning for them.
_ASSIGNMENT_STEMS = ("pass", "pwd", "secret", "key", "token", "bearer", "credential")
_PASSWORD_STEMS = ("pass", "pwd", "secret")  # a value named so is a secret even if short
_ASSIGNMENT = re.compile(
    r"[A-Za-z0-9_-]*[\"']?\s*(?::=|=>|[:=])\s*"
    r"(?:\"(?P<dq>[^\"\n]{6,200})\"|'(?P<sq>[^'\n]{6,200})'|(?P<bare>[^\s\"',;)}\]]{6,200}))"
)
_PLACEHOLDER = re.compile(
    r"""(?ix)^(?:
      [*x•.#-]+                                # ****, xxxx
    | <[^>]*> | \[[^\]]*\] | \{[^}]*\}         # <password>, [token], {secret}
    | \$\{?[\w.-]+\}? | %\(?\w*\)?s | \$\w+    # ${DB_PASSWORD}, %(pw)s, $TOKEN
    | (?:your|my|some)[_-]?[a-z_-]*            # your_password, my-token
    | .*(?:example|placeholder|changeme|redacted|dummy|sample|test|here|xxxx).*
    | password\d* | passw(?:or)?d | secret | token | none | null | true | false | undefined
    )$"""
)
_CALL_OR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(?:\(.*\)?|\[.*\]?)?$")


def shannon_entropy(value: str) -> float:
    """Bits per character; random base62 is about 5.9, English words about 3 to 4."""
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_random(value: str, minimum: float) -> bool:
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
        )
    )
    return classes >= 2 and shannon_entropy(value) >= minimum


def _jwt_ok(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return False
    return b'"alg"' in decoded or b'"typ"' in decoded


class SecretsDetector:
    """Provider keys and tokens, private keys, JWTs and passwords."""

    name = "secrets"
    KINDS: ClassVar[frozenset[str]] = frozenset(
        {
            "openai_key", "anthropic_key", "google_api_key", "aws_access_key",
            "aws_secret_key", "github_token", "slack_token", "slack_webhook", "stripe_key",
            "gitlab_token", "huggingface_token", "npm_token", "pypi_token", "sendgrid_key",
            "private_key", "jwt", "connection_password", "generic_secret",
        }
    )  # fmt: skip

    def __init__(self, kinds: Iterable[str] | None = None) -> None:
        self._kinds = select_kinds(kinds, self.KINDS, self.name)

    def scan(self, text: str) -> list[Finding]:
        kinds = self._kinds
        found = list(self._prefixed(text))
        if "connection_password" in kinds and "://" in text:
            found += self._url_passwords(text)
        lowered = text.lower()
        if "aws_secret_key" in kinds:
            found += self._aws_secrets(text, lowered)
        if "generic_secret" in kinds:
            found += self._assignments(text, lowered, found)
        return sorted((f for f in found if f.kind in kinds), key=lambda f: (f.start, -f.end))

    def _prefixed(self, text: str) -> Iterator[Finding]:
        present: dict[str, bool] = {}
        for kind, gate, pattern in _FORMATS:
            if kind in self._kinds:
                if gate not in present:
                    present[gate] = gate in text
                if present[gate]:
                    yield from self._formatted(text, kind, pattern)

    def _formatted(self, text: str, kind: str, pattern: re.Pattern[str]) -> Iterator[Finding]:
        for m in pattern.finditer(text):
            start, end = m.start(), m.end()
            if start and _TOKEN_CHAR.match(text, start - 1) and kind != "private_key":
                continue  # "task-..." is not "sk-...": a key starts a token
            if _TOKEN_CHAR.match(text, end) and kind not in ("slack_webhook", "private_key"):
                continue  # too long for the format: some other identifier
            if kind == "jwt" and not _jwt_ok(m.group()):
                continue
            if kind == "openai_key" and not _looks_random(m.group()[3:], 3.0):
                continue  # "sk-my-very-long-feature-branch-name"
            if kind == "private_key":
                rest = _PEM_REST.match(text, end)
                end = rest.end() if rest else end
            yield Finding(self.name, kind, start, end, 0.99 if kind != "jwt" else 0.95)

    def _url_passwords(self, text: str) -> Iterator[Finding]:
        at = text.find("://")
        while at != -1:
            # The scheme is at most 21 characters before "://".
            m = _URL_PASSWORD.search(text, max(0, at - 21), at + 400)
            if m and m.start(1) > at and not _PLACEHOLDER.match(m.group(1)):
                yield Finding(self.name, "connection_password", m.start(1), m.end(1), 0.95)
            at = text.find("://", at + 3)

    def _aws_secrets(self, text: str, lowered: str) -> Iterator[Finding]:
        seen: set[int] = set()
        for word in ("aws", "secretaccesskey", "secret_access_key"):
            at = lowered.find(word)
            while at != -1:
                # The secret follows its name ("aws_secret_access_key = ...") within a line or two.
                end = at + len(word)
                m = _AWS_SECRET.search(text, end, end + 80)
                if m and m.start() not in seen and _looks_random(m.group(), 4.0):
                    seen.add(m.start())
                    yield Finding(self.name, "aws_secret_key", m.start(), m.end(), 0.9)
                at = lowered.find(word, end)

    def _assignments(self, text: str, lowered: str, known: list[Finding]) -> Iterator[Finding]:
        seen: set[int] = set()
        for stem in _ASSIGNMENT_STEMS:
            at = lowered.find(stem)
            while at != -1:
                m = _ASSIGNMENT.match(text, at + len(stem))
                if m and m.end() not in seen:
                    seen.add(m.end())
                    found = self._assignment(m, stem in _PASSWORD_STEMS, known)
                    if found is not None:
                        yield found
                at = lowered.find(stem, at + 1)

    def _assignment(
        self, m: re.Match[str], is_password: bool, known: list[Finding]
    ) -> Finding | None:
        group = "dq" if m.group("dq") else "sq" if m.group("sq") else "bare"
        value, start, end = m.group(group), m.start(group), m.end(group)
        if any(f.start < end and start < f.end for f in known) or _PLACEHOLDER.match(value):
            return None
        if group == "bare" and _CALL_OR_NAME.match(value) and not any(c.isdigit() for c in value):
            return None  # password = get_password(), token: cfg.token
        if is_password:
            ok = " " not in value.strip() and shannon_entropy(value) >= 2.0
        else:
            ok = len(value) >= 16 and " " not in value and _looks_random(value, 3.0)
        if not ok:
            return None
        return Finding(self.name, "generic_secret", start, end, 0.8 if is_password else 0.7)
