"""Token estimates for when the upstream cannot count for us.

No tokenizer ships offline for every model (tiktoken downloads its tables at
run time, which we do not allow), so this is an estimate: about four
characters per token, the rule of thumb both OpenAI and Anthropic document.
"""

from __future__ import annotations

from typing import Any

from aicp.protocol.jsonutil import dumps


def estimate_tokens(value: Any) -> int:
    text = value if isinstance(value, str) else dumps(value).decode()
    return max(1, (len(text) + 3) // 4)


def estimate_request_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens of a chat, messages or Responses body: its prompt, system and tools."""
    total = 0
    for key in ("system", "instructions", "messages", "input", "tools"):
        value = body.get(key)
        if value:
            total += estimate_tokens(value)
    return max(1, total)
