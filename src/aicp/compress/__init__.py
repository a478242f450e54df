"""Smaller chat requests: whitespace, repeated context, trimming and summaries to a budget.

    result = compress_sync(body, "openai", "gpt-4o", steps=["whitespace", "dedupe", "trim"],
                           budget_tokens=128_000 - 4_096, counter=app_counter)
    result.body, result.tokens_before, result.tokens_after, result.receipt()

Importing this package loads no tokenizer: bpe-openai is imported on the first count.
"""

from aicp.compress.pipeline import (
    STEP_NAMES,
    AppliedStep,
    Compressed,
    CountingMode,
    Summariser,
    compress,
    compress_sync,
)
from aicp.compress.tokens import Encoding, TokenCounter, encoding_for_model

__all__ = [
    "STEP_NAMES",
    "AppliedStep",
    "Compressed",
    "CountingMode",
    "Encoding",
    "Summariser",
    "TokenCounter",
    "compress",
    "compress_sync",
    "encoding_for_model",
]
