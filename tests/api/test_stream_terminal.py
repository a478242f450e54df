"""A pass-through stream's terminal event is held until the receipt commits."""

from __future__ import annotations

import pytest

from aicp.api.gateway import TERMINAL, _Terminal
from aicp.providers.base import ANTHROPIC, OPENAI, RESPONSES

EVENTS = b'data: {"a":1}\n\ndata: {"b":2}\n\n'


@pytest.mark.parametrize("protocol", [OPENAI, ANTHROPIC, RESPONSES])
def test_the_terminal_event_is_held_however_the_reads_split_it(protocol: str) -> None:
    stream = EVENTS + TERMINAL[protocol] + b"\n\n"
    for size in range(1, len(stream) + 1):
        hold = _Terminal(protocol)
        sent = b"".join(hold.feed(stream[i : i + size]) for i in range(0, len(stream), size))
        assert sent == EVENTS, size
        assert hold.held == TERMINAL[protocol] + b"\n\n", size


def test_bytes_that_only_look_like_the_start_of_the_marker_are_released() -> None:
    hold = _Terminal(OPENAI)
    assert hold.feed(b'data: {"a":1}\n\nda') == b'data: {"a":1}\n\n'
    assert hold.feed(b'ta: {"b":2}\n\n') == b'data: {"b":2}\n\n'
    assert hold.held == b""
