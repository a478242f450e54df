"""Hot reload: poll a policy directory and install a new set when its files change.

A set that fails to load is not installed: the previous one stays active,
the error is logged and handed to `on_error` (the app turns it into an event).
The same broken state is reported once, not on every poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from aicp.errors import ConfigError
from aicp.policy.engine import PolicyEngine
from aicp.policy.policyset import PolicySet, policy_files

log = logging.getLogger("aicp.policy")

Signature = tuple[tuple[str, int, int], ...]


def signature(directory: Path) -> Signature:
    """(name, mtime_ns, size) of each policy file; a missing directory has none."""
    found = []
    try:
        for path in policy_files(directory):
            stat = path.stat()
            found.append((path.name, stat.st_mtime_ns, stat.st_size))
    except OSError:
        pass  # a file removed between listing and stat: the next poll sees the rest
    return tuple(found)


class PolicyWatcher:
    """Polls the directory's (name, mtime_ns, size) signature every `interval_s`; on change
    loads a new PolicySet and engine.replace()s it; on failure keeps the previous set and
    calls on_error(message).

    The engine's current set is taken to be the directory as it is when the watcher is made.
    """

    def __init__(
        self,
        engine: PolicyEngine,
        directory: Path,
        *,
        pack: bool,
        interval_s: float = 1.0,
        on_reload: Callable[[PolicySet], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.directory = directory
        self.pack = pack
        self.interval_s = interval_s
        self.on_reload = on_reload
        self.on_error = on_error
        self._seen = signature(directory)

    def check(self) -> bool:
        """One poll, synchronous: True when a new set was installed."""
        loaded = self._load()
        return loaded is not None and self._install(loaded)

    def _load(self) -> PolicySet | ConfigError | None:
        """The directory's new set (or why it failed), None when nothing changed."""
        now = signature(self.directory)
        if now == self._seen:
            return None
        self._seen = now
        try:
            return PolicySet.load(self.directory, pack=self.pack)
        except ConfigError as exc:
            return exc

    def _install(self, loaded: PolicySet | ConfigError) -> bool:
        if isinstance(loaded, ConfigError):
            log.warning("policy reload failed, keeping the previous set: %s", loaded.message)
            if self.on_error is not None:
                self.on_error(loaded.message)
            return False
        self.engine.replace(loaded)
        log.info("policies reloaded: %d policies from %s", len(loaded), self.directory)
        if self.on_reload is not None:
            self.on_reload(loaded)
        return True

    async def run(self) -> None:
        """Poll until cancelled (by the app at shutdown). Files are read, parsed and
        validated on a thread (a set takes milliseconds, a broken file more); the new
        set is installed on the loop, where the engine is used."""
        while True:
            await asyncio.sleep(self.interval_s)
            loaded = await asyncio.to_thread(self._load)
            if loaded is not None:
                self._install(loaded)
