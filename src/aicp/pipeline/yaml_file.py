"""The YAML front end: a pipeline file to a draft, every part with its line.

The file is read through PyYAML's node API (`yaml.compose`), so each key and
value keeps its line for the compiler's messages. Unknown keys anywhere and
duplicate keys are problems. An input string that is exactly
`${params.NAME}` or `${stages.NAME}` is a reference; `$${...}` is the
literal text `${...}`; any other string is a constant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from aicp.errors import PipelineInvalid
from aicp.pipeline.compiler import compile_pipeline
from aicp.pipeline.draft import NAME, DraftParam, DraftStage, PipelineDraft
from aicp.pipeline.model import Pipeline, Ref, RefKind, Unknown
from aicp.pipeline.types import import_object

_REF = re.compile(r"\$\{(params|stages)\.(" + NAME.pattern + r")\}")
_WHOLE = re.compile(r"(\$+)\{[^}]*\}")
#: Lists and mappings are built here, so only untagged ones are (tags could build objects).
_PLAIN_TAGS = ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")
_REF_KIND: dict[str, RefKind] = {"params": "param", "stages": "stage"}

#: A parameter's `type:` by name; anything else is `module:Class`.
PARAM_TYPES: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list": list,
    "dict": dict,
    "any": Any,
}


def load_yaml(path: str | Path) -> Pipeline:
    """The pipeline in the file at `path`; PipelineInvalid if it is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineInvalid([f"{path}: cannot read the pipeline file: {exc}"]) from exc
    return compile_pipeline(parse_yaml(text, str(path)))


def parse_yaml(text: str, path: str) -> PipelineDraft:
    """The draft of the pipeline written in `text` (read from `path`, named in messages)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise PipelineInvalid([f"{path}:{line}: invalid YAML: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise PipelineInvalid([f"{path}: invalid YAML: {exc}"]) from exc
    reader = _Reader(path)
    draft = PipelineDraft(name=Path(path).stem, source=path)
    draft.origin = {"kind": "yaml", "text": text, "path": path}
    if not isinstance(root, yaml.MappingNode):
        reader.problem(root, "a pipeline file is a mapping with `pipeline:` and `stages:`")
    else:
        reader.pipeline(root, draft)
    draft.problems = reader.problems
    return draft


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []
        self._loader = yaml.SafeLoader("")

    def problem(self, node: yaml.Node | None, message: str) -> None:
        self.problems.append(f"{self.path}:{_line(node)}: {message}")

    def entries(
        self, node: yaml.Node, what: str, known: tuple[str, ...] | None = None
    ) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
        """(key, key node, value node) of a mapping; duplicates and unknown keys reported."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping")
            return
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                self.problem(key_node, f"{what}: duplicate key {key!r}")
            elif known is not None and key not in known:
                self.problem(key_node, f"{what}: unknown key {key!r} (known: {', '.join(known)})")
            else:
                seen.add(key)
                yield key, key_node, value_node

    def constant(self, node: yaml.Node, what: str) -> Any:
        """A plain value; a reference inside it is a problem (they are whole inputs only)."""
        if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_TAGS:
            self.problem(node, f"{what}: the tag {node.tag!r} is not supported")
            return None
        if isinstance(node, yaml.SequenceNode):
            return [self.constant(n, what) for n in node.value]
        if isinstance(node, yaml.MappingNode):
            return {k: self.constant(v, what) for k, _, v in self.entries(node, what)}
        value = self.scalar(node, what)
        if isinstance(value, str) and (m := _WHOLE.fullmatch(value)):
            if len(m.group(1)) > 1:
                return value[1:]
            self.problem(node, f"{what}: {value!r}: only a whole input value can be a reference")
        return value

    def scalar(self, node: yaml.Node, what: str) -> Any:
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # a tag SafeLoader does not know, a bad timestamp...
            self.problem(node, f"{what}: {getattr(exc, 'problem', None) or exc}")
            self._loader = yaml.SafeLoader("")  # the failed one keeps the node as half-built
            return None

    def input(self, node: yaml.Node, what: str) -> Ref:
        if not isinstance(node, yaml.ScalarNode):
            return Ref("value", value=self.constant(node, what))
        value = self.scalar(node, what)
        if isinstance(value, str) and (m := _REF.fullmatch(value)):
            return Ref(_REF_KIND[m.group(1)], m.group(2))
        if isinstance(value, str) and (m := _WHOLE.fullmatch(value)):
            if len(m.group(1)) > 1:
                return Ref("value", value=value[1:])
            self.problem(
                node,
                f"{what}: {value!r} is not a reference: write ${{params.NAME}} or"
                " ${stages.NAME} ($${...} for the literal text)",
            )
        return Ref("value", value=value)

    def string(self, node: yaml.Node, what: str) -> str:
        value = self.constant(node, what)
        if not isinstance(value, str):
            self.problem(node, f"{what} must be a string")
            return ""
        return value

    def pipeline(self, root: yaml.MappingNode, draft: PipelineDraft) -> None:
        keys = tuple(_TOP)
        seen = set()
        for key, key_node, value in self.entries(root, "the pipeline", keys):
            seen.add(key)
            draft.lines[key] = _line(key_node)
            _TOP[key](self, draft, key_node, value)
        if "pipeline" not in seen:
            self.problem(root, "the file has no `pipeline:` name")
        if "stages" not in seen:
            self.problem(root, "the file has no `stages:`")

    def stage(self, key_node: yaml.Node, node: yaml.Node) -> DraftStage:
        d = DraftStage(name=str(key_node.value), source=self.path, line=_line(key_node))
        what = f"stage {d.name!r}"
        for key, k, v in self.entries(node, what, tuple(_STAGE)):
            d.lines[key] = _line(k)
            _STAGE[key](self, d, v, what)
        return d

    def param(self, key_node: yaml.Node, node: yaml.Node) -> DraftParam:
        p = DraftParam(name=str(key_node.value), source=self.path, line=_line(key_node))
        what = f"param {p.name!r}"
        if not isinstance(node, yaml.MappingNode):
            p.default = self.constant(node, what)
            p.annotation = Unknown if p.default is None else type(p.default)
            return p
        given = {k: v for k, _, v in self.entries(node, what, ("type", "default"))}
        p.required = "default" not in given
        if not p.required:
            p.default = self.constant(given["default"], what)
        if "type" in given:
            p.annotation = self.param_type(given["type"], what)
        elif p.default is not None:
            p.annotation = type(p.default)
        return p

    def param_type(self, node: yaml.Node, what: str) -> Any:
        name = self.string(node, f"{what}: type")
        if name in PARAM_TYPES:
            return PARAM_TYPES[name]
        try:
            found = import_object(name)
        except LookupError as exc:
            known = ", ".join(PARAM_TYPES)
            self.problem(node, f"{what}: type {name!r}: {exc} (a type is {known} or module:Class)")
            return Unknown
        if not isinstance(found, type):
            self.problem(node, f"{what}: type {name!r} is not a class")
            return Unknown
        return found


def _top_name(r: _Reader, d: PipelineDraft, key: yaml.Node, node: yaml.Node) -> None:
    d.name, d.line = r.string(node, "pipeline"), _line(key)


def _top_description(r: _Reader, d: PipelineDraft, key: yaml.Node, node: yaml.Node) -> None:
    d.description = r.string(node, "description")


def _top_concurrency(r: _Reader, d: PipelineDraft, key: yaml.Node, node: yaml.Node) -> None:
    d.concurrency = r.constant(node, "concurrency")


def _top_params(r: _Reader, d: PipelineDraft, key: yaml.Node, node: yaml.Node) -> None:
    d.params = [r.param(k, v) for _, k, v in r.entries(node, "params")]


def _top_stages(r: _Reader, d: PipelineDraft, key: yaml.Node, node: yaml.Node) -> None:
    d.stages = [r.stage(k, v) for _, k, v in r.entries(node, "stages")]


_TOP: dict[str, Callable[[_Reader, PipelineDraft, yaml.Node, yaml.Node], None]] = {
    "pipeline": _top_name,
    "description": _top_description,
    "concurrency": _top_concurrency,
    "params": _top_params,
    "stages": _top_stages,
}


def _inputs(r: _Reader, d: DraftStage, node: yaml.Node, what: str) -> None:
    for arg, k, v in r.entries(node, f"{what}: inputs"):
        d.lines[f"inputs.{arg}"] = _line(k)
        d.inputs[arg] = r.input(v, f"{what}: input {arg!r}")


def _depends_on(r: _Reader, d: DraftStage, node: yaml.Node, what: str) -> None:
    names = r.constant(node, f"{what}: depends_on")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        r.problem(node, f"{what}: depends_on must be a list of stage names")
        return
    d.depends_on = names


def _options(r: _Reader, d: DraftStage, node: yaml.Node, what: str) -> None:
    d.options = {k: r.constant(v, f"{what}: with") for k, _, v in r.entries(node, f"{what}: with")}


def _setter(
    attr: str, *, text: bool = False
) -> Callable[[_Reader, DraftStage, yaml.Node, str], None]:
    def set_value(r: _Reader, d: DraftStage, node: yaml.Node, what: str) -> None:
        read = r.string if text else r.constant
        setattr(d, attr, read(node, f"{what}: {attr}"))

    return set_value


_STAGE: dict[str, Callable[[_Reader, DraftStage, yaml.Node, str], None]] = {
    "type": _setter("type", text=True),
    "call": _setter("call", text=True),
    "inputs": _inputs,
    "depends_on": _depends_on,
    "retries": _setter("retries"),
    "backoff_s": _setter("backoff_s"),
    "timeout_s": _setter("timeout_s"),
    "resources": _setter("resources"),
    "with": _options,
}
