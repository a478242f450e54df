"""Find a pipeline by what a person types (a file or `module:attr`) or by its stored origin."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from aicp.errors import PipelineInvalid
from aicp.pipeline.compiler import compile_pipeline
from aicp.pipeline.dsl import PipelineFunction
from aicp.pipeline.model import Pipeline
from aicp.pipeline.types import import_object
from aicp.pipeline.yaml_file import load_yaml, parse_yaml

_YAML_SUFFIXES = (".yaml", ".yml")


def load_pipeline(target: str, *, base_dir: Path | None = None) -> Pipeline:
    """`path/to/file.yaml` (relative to `base_dir`) or `module:attr` (imported from sys.path)."""
    if target.endswith(_YAML_SUFFIXES):
        path = Path(target)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        return load_yaml(path)
    if ":" in target:
        return _import_pipeline(target)
    raise PipelineInvalid(
        [f"{target!r}: name a pipeline file (.yaml or .yml) or a `module:attribute` to import"]
    )


def _import_pipeline(ref: str) -> Pipeline:
    try:
        obj = import_object(ref)
    except LookupError as exc:
        raise PipelineInvalid([f"{ref}: {exc}"]) from exc
    if isinstance(obj, PipelineFunction):
        return obj.compile()
    if isinstance(obj, Pipeline):
        return obj
    raise PipelineInvalid(
        [f"{ref}: is {type(obj).__name__}, not a @pipeline function or a Pipeline"]
    )


def _need(origin: Mapping[str, str], key: str) -> str:
    if key not in origin:
        raise PipelineInvalid([f"a {origin.get('kind')} pipeline origin without {key!r}"])
    return origin[key]


def _from_yaml(origin: Mapping[str, str]) -> Pipeline:
    path = origin.get("path") or "<pipeline>"
    return compile_pipeline(parse_yaml(_need(origin, "text"), path))


def _from_python(origin: Mapping[str, str]) -> Pipeline:
    return _import_pipeline(_need(origin, "ref"))


_ORIGINS: dict[str, Callable[[Mapping[str, str]], Pipeline]] = {
    "yaml": _from_yaml,
    "python": _from_python,
}


def from_origin(origin: Mapping[str, str]) -> Pipeline:
    """The pipeline again, from its `Pipeline.origin` (in another process, say)."""
    load = _ORIGINS.get(origin.get("kind", ""))
    if load is None:
        kinds = ", ".join(_ORIGINS)
        raise PipelineInvalid([f"pipeline origin of unknown kind {origin.get('kind')!r} ({kinds})"])
    return load(origin)
