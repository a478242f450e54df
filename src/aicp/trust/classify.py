"""Task class from the request's text: keyword and syntax features, one regex pass.

Every keyword of every class is one alternation, so a prompt is scanned once
whatever the number of classes (a 4,000-character prompt in ~30 us); the
class with the highest weighted count wins, ties and silence are "general".
Code also counts syntax that no prose has (fences, `def f(`, `=>`, `};`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# fmt: off  (a table: one keyword a line would make it 170 lines long)
#: Built-in keywords per class: lower-case, matched as whole words (a trailing `*`
#: matches any ending: `indemnif*` is indemnify, indemnification...).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "code": (
        "function",
        "python",
        "javascript",
        "typescript",
        "java",
        "golang",
        "rust",
        "c++",
        "compile*",
        "refactor*",
        "debug*",
        "stack trace",
        "traceback",
        "exception",
        "unit test*",
        "pytest",
        "regex",
        "api endpoint",
        "class",
        "method",
        "variable",
        "bug",
        "null pointer",
        "segfault",
        "async",
        "sql query",
        "pull request",
        "git",
    ),
    "infra": (
        "kubernetes",
        "k8s",
        "kubectl",
        "helm",
        "terraform",
        "ansible",
        "docker*",
        "container*",
        "nginx",
        "load balancer",
        "vpc",
        "subnet",
        "ec2",
        "s3 bucket",
        "cloudformation",
        "prometheus",
        "grafana",
        "ci/cd",
        "deployment",
        "cluster",
        "dns",
        "tls certificate",
        "systemd",
        "autoscal*",
        "ingress",
    ),
    "legal": (
        "contract*",
        "clause*",
        "liabilit*",
        "indemnif*",
        "nda",
        "non-disclosure",
        "gdpr",
        "hipaa",
        "jurisdiction",
        "plaintiff",
        "defendant",
        "attorney",
        "lawyer",
        "lawsuit",
        "litigation",
        "court",
        "statute",
        "regulation*",
        "compliance",
        "terms of service",
        "licens*",
        "copyright",
        "trademark",
        "warrant*",
        "breach of",
        "legal",
        "governing law",
        "arbitration",
    ),
    "security": (
        "vulnerabilit*",
        "cve",
        "exploit*",
        "xss",
        "csrf",
        "sql injection",
        "pentest*",
        "penetration test*",
        "malware",
        "ransomware",
        "phishing",
        "firewall",
        "threat model*",
        "incident response",
        "privilege escalation",
        "owasp",
        "encrypt*",
        "authenticat*",
        "security",
        "attack*",
        "zero-day",
        "siem",
        "intrusion",
    ),
    "document": (
        "summari*",
        "document",
        "report",
        "pdf",
        "translate",
        "translation",
        "rewrite",
        "proofread",
        "paragraph",
        "essay",
        "article",
        "memo",
        "meeting notes",
        "minutes",
        "draft",
        "letter",
        "slide*",
        "the attached",
        "this text",
    ),
    "automation": (
        "workflow*",
        "automat*",
        "zapier",
        "n8n",
        "cron",
        "schedul*",
        "webhook*",
        "trigger*",
        "pipeline*",
        "batch job",
        "every day",
        "every hour",
        "integration",
        "rpa",
        "script that",
        "bot",
    ),
}
# fmt: on

#: Classes that win ties, in this order.
PROTECTED = ("legal", "security")

#: Syntax only code has; each hit counts as this many keywords.
_CODE_SYNTAX = re.compile(
    r"```|^\s*(?:def|class|import|from|fn|func|package|#include)\s+\w|=>|\)\s*\{|\};|</\w+>"
    r"|\b\w+\(\)|\bSELECT\b.+\bFROM\b",
    re.MULTILINE,
)
CODE_SYNTAX_WEIGHT = 3


def _pattern(word: str) -> str:
    if word.endswith("*"):
        return re.escape(word[:-1]) + r"\w*"
    return re.escape(word)


class TaskClassifier:
    """Keyword counts per configured class; classes without keywords are never chosen
    by text (a client hint can still name them)."""

    def __init__(
        self, classes: Iterable[str], extra: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        self.classes = tuple(dict.fromkeys(classes))
        words: dict[str, str] = {}
        for cls in self.classes:
            for word in (*KEYWORDS.get(cls, ()), *(extra or {}).get(cls, ())):
                words.setdefault(word.lower(), cls)
        # Longest first: "sql injection" (security) wins over a shorter overlapping word.
        ordered = sorted(words, key=len, reverse=True)
        self._owner = {w.rstrip("*"): c for w, c in words.items()}
        self._stems = [(w[:-1], c) for w, c in words.items() if w.endswith("*")]
        self._regex = (
            re.compile(r"(?<![\w-])(?:" + "|".join(_pattern(w) for w in ordered) + r")(?![\w-])")
            if ordered
            else None
        )
        self._code = "code" in self.classes

    def _class_of(self, match: str) -> str | None:
        owner = self._owner.get(match)
        if owner is not None:
            return owner
        for stem, cls in self._stems:
            if match.startswith(stem):
                return cls
        return None

    def scores(self, text: str) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        if self._regex is not None:
            for match in self._regex.findall(text.lower()):
                cls = self._class_of(match)
                if cls is not None:
                    counts[cls] += 1
        if self._code:
            counts["code"] += CODE_SYNTAX_WEIGHT * len(_CODE_SYNTAX.findall(text))
        return counts

    def classify(self, text: str) -> tuple[str, dict[str, int]]:
        """The winning class and every class's score."""
        counts = self.scores(text)
        best = max(counts.values(), default=0)
        if best == 0:
            return ("general" if "general" in counts else self.classes[0]), counts
        winners = [c for c, n in counts.items() if n == best]
        if len(winners) > 1:
            # A tie with a protected class goes to it: the policies that guard legal and
            # security data must not be escaped by one word of another class.
            protected = [c for c in PROTECTED if c in winners]
            if protected:
                return protected[0], counts
            if "general" in counts:
                return "general", counts
        return winners[0], counts
