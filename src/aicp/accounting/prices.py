"""Prices per model (stub): USD per million input and output tokens."""

from __future__ import annotations

from aicp.config import Settings


class Prices:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
