"""The gateway from Python with the official openai SDK: only the base URL changes.

    make run                       # in another terminal: the gateway on 127.0.0.1:4000
    python examples/simple_chat.py "What is a circuit breaker?"

AICP_BASE_URL (default http://127.0.0.1:4000) and AICP_API_KEY (a virtual key; any
string on an open local gateway) say where and as whom; AICP_MODEL picks the model.
"""

from __future__ import annotations

import os
import sys

import openai


def main(argv: list[str]) -> int:
    question = " ".join(argv) or "Say hello in one short sentence."
    client = openai.OpenAI(
        base_url=os.environ.get("AICP_BASE_URL", "http://127.0.0.1:4000") + "/v1",
        api_key=os.environ.get("AICP_API_KEY", "unused-on-an-open-local-gateway"),
    )
    model = os.environ.get("AICP_MODEL", "gpt-4o-mini")
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": question}]
    )
    reply = raw.parse()
    print(reply.choices[0].message.content)
    # Every answer has a receipt: `aicp receipts show ID` or GET /v1/receipts/ID.
    print(f"receipt: {raw.headers.get('x-aicp-receipt-id')}", file=sys.stderr)
    if reply.usage is not None:
        print(
            f"tokens: {reply.usage.prompt_tokens} in, {reply.usage.completion_tokens} out",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
