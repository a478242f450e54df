"""A loaded, validated policy set: the shipped pack plus a directory of *.cedar files.

Cedar numbers policies by position; here each is registered under its `@id`,
so Cedar's diagnostics name policies by the ids their authors gave them.
Policies an admin asked to bypass are left out of a Cedar set built for
that bypass (memoised), instead of trusting every policy to check the context.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import cedarpy

from aicp.errors import ConfigError
from aicp.policy.compile import Compiled, compile_policies
from aicp.policy.files import Policy, parse_file
from aicp.policy.prune import copies_cache
from aicp.policy.reads import Reads, reads_of

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = HERE / "schema.cedarschema"
PACK_DIR = HERE / "pack"
#: Distinct bypass sets whose Cedar sets are kept; admins ask for few.
_BYPASS_MEMO = 32


def load_schema() -> cedarpy.Schema:
    return cedarpy.Schema.from_str(SCHEMA_FILE.read_text(encoding="utf-8"))


def policy_files(directory: Path) -> list[Path]:
    """The files a policy directory contributes (not recursive: tests/ lives below)."""
    return sorted(p for p in directory.glob("*.cedar") if p.is_file())


class PolicySet:
    """An immutable set of policies with unique ids, validated against the schema."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        self.policies: Mapping[str, Policy] = {p.id: p for p in policies}
        self.ids = frozenset(self.policies)
        self.reads: Reads = reads_of(p.est for p in policies)
        self._memo: OrderedDict[frozenset[str], Compiled] = OrderedDict()
        self._copies = copies_cache()
        self.full = self._compile(policies)

    @classmethod
    def load(cls, directory: Path | None, *, pack: bool = True) -> PolicySet:
        """The pack (when `pack`) and every *.cedar in `directory`; ConfigError lists all errors."""
        files: list[tuple[str, Path]] = []
        if pack:
            files += [(f"pack/{p.name}", p) for p in policy_files(PACK_DIR)]
        if directory is not None:
            if not directory.is_dir():
                raise ConfigError(f"policy directory {directory} does not exist")
            files += [(str(p), p) for p in policy_files(directory)]
        texts = []
        for shown, path in files:
            try:
                texts.append((shown, path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{shown}: cannot read the policy file: {exc}") from None
        return cls.from_texts(texts)

    @classmethod
    def from_texts(cls, files: Iterable[tuple[str, str]]) -> PolicySet:
        """A set from (file name, Cedar text) pairs; the names appear in errors."""
        schema = load_schema()
        policies: list[Policy] = []
        errors: list[str] = []
        for source, text in files:
            found, problems = parse_file(source, text, schema)
            policies += found
            errors += problems
        errors += _duplicates(policies)
        if errors:
            raise ConfigError("invalid policies:\n" + "\n".join(errors))
        try:
            return cls(policies)
        except ValueError as exc:  # Cedar refusing its own JSON form: not expected
            raise ConfigError(f"invalid policies: {exc}") from None

    def compiled(self, bypass: frozenset[str]) -> Compiled:
        """The Cedar set without the policies in `bypass` (ids not in the set are ignored)."""
        bypass = bypass & self.ids
        if not bypass:
            return self.full
        found = self._memo.get(bypass)
        if found is None:
            found = self._compile([p for p in self.policies.values() if p.id not in bypass])
            self._memo[bypass] = found
            if len(self._memo) > _BYPASS_MEMO:
                self._memo.popitem(last=False)
        return found

    def _compile(self, policies: Sequence[Policy]) -> Compiled:
        return compile_policies(policies, not self.reads.context_whole, self._copies)

    def __len__(self) -> int:
        return len(self.policies)


def _duplicates(policies: Sequence[Policy]) -> list[str]:
    first: dict[str, Policy] = {}
    errors = []
    for p in policies:
        seen = first.setdefault(p.id, p)
        if seen is not p:
            errors.append(
                f"{p.source}: line {p.line}: duplicate policy id {p.id!r} "
                f"(first in {seen.source}, line {seen.line})"
            )
    return errors
