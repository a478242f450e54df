"""Budgets: reserve before the call, settle after; the spend ledger (stub)."""

from __future__ import annotations

from typing import Any

from aicp.accounting.prices import Prices
from aicp.plane.exchange import Exchange
from aicp.storage.db import Database


class BudgetService:
    def __init__(self, db: Database, redis: Any) -> None:
        self.db = db
        self.redis = redis


class BudgetStage:
    name = "budget"

    def __init__(self, budgets: BudgetService, prices: Prices) -> None:
        self.budgets = budgets
        self.prices = prices

    async def __call__(self, ex: Exchange) -> None:
        return None


class SettleStage:
    """Response stage: the actual cost, the spend ledger, the reservation settled."""

    name = "settle"

    def __init__(self, budgets: BudgetService, prices: Prices) -> None:
        self.budgets = budgets
        self.prices = prices

    async def __call__(self, ex: Exchange) -> None:
        return None
