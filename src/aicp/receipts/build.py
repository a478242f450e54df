"""The receipt of one request: what the path decided, as canonical-ready data.

Everything is a string, an integer, a boolean or null (money in micro-USD,
durations in microseconds, times as RFC 3339 UTC), so the canonical form is
exact and any JCS implementation reproduces the bytes. The principal appears
by key id and display prefix only; bodies appear by their SHA-256 only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from aicp.guardrails.stages import CLEAN
from aicp.plane.exchange import Exchange, Principal
from aicp.receipts.canonical import plain

#: The receipt format's version; bump when fields change meaning.
VERSION = 1

#: Trace entries of these stages are the guardrail, policy, cache and compression
#: decisions; the stages of later issues add them and they land in their sections.
_SECTIONS = {
    "guard_input": "guardrails",
    "guard_output": "guardrails",
    "policy": "policy",
    "recall": "cache",
    "memory": "memory",
    "compress": "compression",
}


#: The client's headers that steer decisions, kept so that a replay asks the same way.
HINTS = (
    "x-aicp-task-class",
    "x-aicp-sensitivity",
    "x-aicp-trust",
    "x-aicp-latency-sla-ms",
    "x-aicp-mode",
    "x-aicp-cache",
    "x-aicp-memory",
    "x-aicp-policy-bypass",
    "x-aicp-override",
    "cache-control",
)

#: Stages whose trace entries hold only str, int (safe), bool, None, lists and dicts
#: (classify: labels, small integer scores, the trust level).
_PLAIN = frozenset({"policy", "route", "classify"})


def body_hash(data: bytes | None) -> str | None:
    return None if data is None else "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(epoch: float) -> str:
    whole, micros = _split(epoch)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


def _split(epoch: float) -> tuple[int, int]:
    whole = int(epoch)
    micros = round((epoch - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return whole, micros


class Stamps:
    """`rfc3339` that formats each second once: the requests of one second share its
    text (strftime costs more than the rest of a timestamp). One per record stage."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, epoch: float) -> str:
        whole, micros = _split(epoch)
        if whole != self._second:
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            self._second = whole
        return f"{self._text}.{micros:06d}Z"


def principal_section(p: Principal) -> dict[str, Any]:
    """The receipt's view of a principal, made once per principal object (principals are
    not changed after authentication; the key cache hands out the same one each time)."""
    section = p.receipt_section
    if section is None:
        section = p.receipt_section = {
            "key_id": p.key_id,
            "key_prefix": p.display,
            "user_id": p.user_id,
            "team_id": p.team_id,
            "project_id": p.project_id,
            "service_account_id": p.service_account_id,
            "trust_level": p.trust_level,
        }
    return section


def _us(ms: float | None) -> int | None:
    return None if ms is None else round(ms * 1000)


def build(
    ex: Exchange, request_hash: str | None, ended: float, stamp: Callable[[float], str] = rfc3339
) -> dict[str, Any]:
    route = ex.route
    served = ex.served
    usage = ex.usage
    sections: dict[str, list[Any]] = {
        "guardrails": [],
        "policy": [],
        "cache": [],
        "compression": [],
        "memory": [],
    }
    decisions = []
    # Only what stages recorded can hold floats or other types: the rest is built
    # from str, int, bool and None below, so `plain` runs on these alone (and not on
    # the stages that record plain data already). A decision that has a section goes
    # there only; `decisions` keeps the others, in order.
    for stage, decision in ex.trace:
        if stage not in _PLAIN and decision is not CLEAN:
            decision = plain(decision)
        section = _SECTIONS.get(stage)
        if section is not None:
            sections[section].append(decision)
        else:
            decisions.append([stage, decision])
    t0 = ex.started
    err = ex.error
    headers = ex.headers
    receipt: dict[str, Any] = {
        "v": VERSION,
        "id": ex.receipt_id,
        "request_id": ex.id,
        "started_at": stamp(ex.wall_start),
        "ended_at": stamp(ended),
        "mode": ex.mode,
        "endpoint": {"protocol": ex.protocol, "operation": ex.operation, "stream": ex.stream},
        "principal": principal_section(ex.principal),
        "labels": plain(ex.labels) if ex.labels else {},
        "hints": {h: v[:200] for h in HINTS if (v := headers.get(h)) is not None},
        "classification": {
            "task_class": ex.task_class,
            "sensitivity": ex.sensitivity,
            "trust": ex.trust,
            "offline": ex.offline,
        },
        "guardrails": sections["guardrails"],
        "policy": sections["policy"],
        "cache": sections["cache"] or [{"result": "off"}],
        "compression": sections["compression"],
        "memory": sections["memory"],
        "model": ex.model[:200],
        "route": None
        if route is None
        else {
            "requested": route.model[:200],
            "chain": route.describe(),
            "forced": route.forced,
            "served": served.key if served is not None else None,
        },
        "attempts": [
            {
                "provider": a.provider,
                "deployment": a.deployment,
                "model": a.model,
                "status": a.status,
                "error": None if a.error is None else a.error[:500],
                "latency_us": round(a.latency_ms * 1000),
            }
            for a in ex.attempts
        ],
        "status": ex.status,
        "error": None if err is None else {"kind": err.kind, "code": err.code},
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cached_tokens": usage.cached_tokens,
            "cache_creation_tokens": usage.cache_creation_tokens,
        },
        "cost_micros": round(ex.cost * 1_000_000),
        "latency_us": {
            "total": round((ended - ex.wall_start) * 1_000_000),
            "provider": round(sum(a.latency_ms for a in ex.attempts) * 1000),
            "ttft": _us(ex.ttft_ms),
        },
        "stages": [
            [name, round((start - t0) * 1_000_000), round((end - start) * 1_000_000)]
            for name, start, end in ex.stage_times
        ],
        "decisions": decisions,
        "bodies": {"request": request_hash, "response": ex.response_hash},
    }
    return receipt
