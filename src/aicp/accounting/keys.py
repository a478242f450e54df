"""Virtual keys: generation, peppered hashes, and the in-process key cache (stub)."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from aicp.config import StorageSettings
from aicp.plane.exchange import Principal
from aicp.storage.db import Database


def load_pepper(storage: StorageSettings) -> bytes:
    """AICP_KEY_PEPPER, else a random pepper kept in the data directory."""
    if storage.key_pepper:
        return storage.key_pepper.encode()
    path = Path(storage.data_dir) / "key_pepper"
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = os.urandom(32).hex().encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    return value


def hash_key(pepper: bytes, key: str) -> str:
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


class KeyService:
    def __init__(self, db: Database, redis: Any, pepper: bytes) -> None:
        self.db = db
        self.redis = redis
        self.pepper = pepper

    async def start(self) -> None:
        return None

    def lookup(self, key: str) -> Principal | None:
        """The principal of a presented key, from the in-process cache; no database trip."""
        return None

    async def aclose(self) -> None:
        return None
