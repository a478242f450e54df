"""A module no test imports: whether it is in `sys.modules` tells whether the gateway
imported it on someone's behalf."""

from __future__ import annotations


def stage() -> str:
    return "imported"
