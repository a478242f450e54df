"""OpenAI Responses API <-> canonical (OpenAI chat) form.

    request.py   responses_to_chat (a Responses body -> canonical chat)
    response.py  completion_to_response, usage both ways
    stream.py    StreamEncoder (canonical chunks -> Responses SSE events)

Used when a Responses client reaches a provider without the Responses API;
OpenAI and Azure get the client's body as it came (providers/openai.py).
"""

from aicp.protocol.responses.request import responses_to_chat
from aicp.protocol.responses.response import (
    completion_to_response,
    responses_usage,
    usage_from_responses,
)
from aicp.protocol.responses.stream import StreamEncoder

__all__ = [
    "StreamEncoder",
    "completion_to_response",
    "responses_to_chat",
    "responses_usage",
    "usage_from_responses",
]
