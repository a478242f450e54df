"""Fake upstream routes for the gemini wire format (to be written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from aicp.testing.upstream import FakeUpstream


def register(app: web.Application, upstream: FakeUpstream) -> None:
    return None
