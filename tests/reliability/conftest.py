"""The reliability tests' two fake upstreams: a primary and a fallback deployment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aicp.testing import FakeUpstream


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as u:
        yield u


@pytest.fixture
def up2() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply="Hello from the fallback") as u:
        yield u
