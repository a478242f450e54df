"""The neutral draft both front ends (YAML, decorators) build for the compiler.

A draft is what was written, unchecked: values may be of the wrong type and
names may dangle; `compiler.compile_pipeline` finds all of that at once. Each
part carries its file and line so problems can point at them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aicp.pipeline.model import Ref, Unknown

#: Stage and parameter names: usable inside `${stages.NAME}` / `${params.NAME}`.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def at(source: str | None, line: int | None, subject: str) -> str:
    """The start of a problem: `file:line: subject`, or the subject alone when unknown."""
    return f"{source}:{line or 1}: {subject}" if source else subject


@dataclass
class DraftStage:
    name: str
    type: str = "python"
    call: str | None = None
    func: Callable[..., Any] | None = None
    inputs: dict[str, Ref] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    retries: Any = 0
    backoff_s: Any = 1.0
    timeout_s: Any = None
    resources: Any = field(default_factory=dict)
    source: str | None = None
    line: int | None = None
    #: Lines of parts of the stage ("call", "inputs.docs", "depends_on"...), for sharper messages.
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, part: str = "") -> str:
        return at(self.source, self.lines.get(part, self.line), f"stage {self.name!r}")


@dataclass
class DraftParam:
    name: str
    annotation: Any = Unknown
    default: Any = None
    required: bool = False
    source: str | None = None
    line: int | None = None

    def where(self) -> str:
        return at(self.source, self.line, f"param {self.name!r}")


@dataclass
class PipelineDraft:
    name: Any
    stages: list[DraftStage] = field(default_factory=list)
    params: list[DraftParam] = field(default_factory=list)
    concurrency: Any = 4
    description: str = ""
    source: str | None = None
    line: int | None = None
    origin: dict[str, str] = field(default_factory=dict)
    #: Problems the front end found already (unknown keys, malformed values), reported too.
    problems: list[str] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, part: str = "") -> str:
        return at(self.source, self.lines.get(part, self.line), f"pipeline {self.name!r}")
