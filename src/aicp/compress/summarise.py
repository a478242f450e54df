"""Summaries of dropped turns, through a cheap route (`compression.summarise_with`).

The summary is the gateway's own request: it is not billed to the key, and it
goes only where the request itself may go. The first deployment of the named
model that is local, or, for a request that is neither offline nor
`confidential`/`restricted`, any deployment the request's policies allow or
that the policies never saw (docs/compression.md). No such deployment: no
summary, and trimming stands in.
"""

from __future__ import annotations

from typing import Any

from aicp.plane.exchange import Exchange
from aicp.protocol.jsonutil import Json
from aicp.providers.base import ANTHROPIC, Call, Timeouts
from aicp.routing.router import Deployment, Router

PROMPT = (
    "Summarise the conversation below for the assistant that continues it. Keep every "
    "fact, number, name, decision and open question; drop pleasantries. Write plain "
    "prose of at most 200 words."
)
TIMEOUTS = Timeouts(connect=5.0, first_byte=30.0, idle=30.0)


def _text(message: Json) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


class Summariser:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        #: The deployment that summarised, once it did.
        self.used: str | None = None

    @classmethod
    def for_request(cls, router: Router, name: str, ex: Exchange) -> Summariser | None:
        try:
            chain = router.resolve(name).chain
        except Exception:
            return None
        allowed = ex.decision.allowed if ex.decision is not None else None
        may_leave = ex.may_leave
        for dep in chain:
            if getattr(dep.provider, "local", False):
                return cls(dep)
            if may_leave and (allowed is None or dep.key in allowed):
                return cls(dep)
        return None

    async def run(self, messages: list[Json]) -> str:
        transcript = "\n\n".join(
            f"{m.get('role', 'user')}: {_text(m)}" for m in messages if isinstance(m, dict)
        )
        body: dict[str, Any] = {
            "model": self.deployment.model,
            "messages": [
                {"role": "system", "content": PROMPT},
                {"role": "user", "content": transcript},
            ],
            "max_tokens": 400,
        }
        dep = self.deployment
        call = Call("openai", "chat", body, dep.model, {}, TIMEOUTS)
        reply = await dep.provider.complete(call)
        data = reply.data
        if reply.protocol == ANTHROPIC:
            from aicp.protocol.anthropic import message_to_completion

            data = message_to_completion(data, dep.model)
        text = (((data.get("choices") or [{}])[0]).get("message") or {}).get("content")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the summary came back empty")
        self.used = dep.key
        return text.strip()
