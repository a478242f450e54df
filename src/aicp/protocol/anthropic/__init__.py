"""Anthropic Messages API <-> canonical (OpenAI chat) form, both ways.

    request.py   messages_to_chat, chat_to_messages
    response.py  message_to_completion, completion_to_message, usage, stop reasons
    stream.py    StreamEncoder (canonical chunks -> Anthropic SSE),
                 EventTranslator (Anthropic SSE -> canonical chunks)

The canonical form is OpenAI chat plus a few extension fields that carry what
OpenAI has no words for: `cache_control` on content parts and tools,
`reasoning_content` and `thinking_blocks` on assistant messages (signatures
kept, so a conversation can go back to Anthropic), `is_error` on tool
messages, `thinking` and `top_k` on the request, and
`cache_creation_input_tokens` in usage.
"""

from aicp.protocol.anthropic.request import DEFAULT_MAX_TOKENS, chat_to_messages, messages_to_chat
from aicp.protocol.anthropic.response import (
    completion_to_message,
    finish_reason,
    message_to_completion,
    stop_reason,
    usage_from_anthropic,
)
from aicp.protocol.anthropic.stream import EventTranslator, StreamEncoder

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "EventTranslator",
    "StreamEncoder",
    "chat_to_messages",
    "completion_to_message",
    "finish_reason",
    "message_to_completion",
    "messages_to_chat",
    "stop_reason",
    "usage_from_anthropic",
]
