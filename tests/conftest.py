from __future__ import annotations

from collections.abc import Iterator

import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import openai_settings


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def gateway(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    with GatewayServer(openai_settings(upstream)) as gw:
        yield gw
