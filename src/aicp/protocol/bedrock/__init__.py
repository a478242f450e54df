"""Canonical OpenAI chat <-> AWS Bedrock Converse / ConverseStream.

Shapes follow the Bedrock Runtime API reference (Converse, ConverseStream,
ContentBlock, ContentBlockDelta, TokenUsage). Converse is JSON over REST; its
stream is the binary `application/vnd.amazon.eventstream`, whose framing is
decoded by the provider: the stream translator receives (event type, JSON payload).
"""

from aicp.protocol.bedrock.request import chat_to_converse
from aicp.protocol.bedrock.response import FINISH_REASONS, converse_to_completion, usage_dict
from aicp.protocol.bedrock.stream import STREAM_EXCEPTIONS, StreamTranslator, stream_exception

__all__ = [
    "FINISH_REASONS",
    "STREAM_EXCEPTIONS",
    "StreamTranslator",
    "chat_to_converse",
    "converse_to_completion",
    "stream_exception",
    "usage_dict",
]
