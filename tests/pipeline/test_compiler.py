"""Validation shared by both front ends: graph, references, callables, types, ordering."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
from pydantic import BaseModel

from aicp.errors import PipelineInvalid
from aicp.pipeline.model import Pipeline, Unknown
from aicp.pipeline.types import compatible, render
from aicp.pipeline.yaml_file import load_yaml
from tests.pipeline.sample_stages import Document

S = "tests.pipeline.sample_stages"


def compile_text(tmp_path: Path, text: str) -> Pipeline:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return load_yaml(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(PipelineInvalid) as info:
        compile_text(tmp_path, text)
    return info.value.problems


def at(tmp_path: Path, snippet: str) -> str:
    """`file:line` of the first line of the written file that contains `snippet`."""
    path = tmp_path / "p.yaml"
    lines = path.read_text().splitlines()
    return f"{path}:{next(i for i, line in enumerate(lines, 1) if snippet in line)}"


def test_a_cycle_is_named_at_its_first_stage(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: loop
        stages:
          a:
            call: {S}:anything
            inputs: {{x: "${{stages.b}}"}}
          b:
            call: {S}:anything
            depends_on: [a]
          c:
            call: {S}:anything
            depends_on: [c]
        """,
    )
    assert found == [
        f"{at(tmp_path, '  a:')}: stage 'a': dependency cycle a -> b -> a (each needs the next)",
        f"{at(tmp_path, '  c:')}: stage 'c': dependency cycle c -> c (each needs the next)",
    ]


def test_unknown_stages_params_and_types_are_named_with_their_lines(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: unknowns
        params: {{folder: docs}}
        stages:
          load:
            call: {S}:anything
            inputs:
              f: ${{params.foldr}}
              x: ${{stages.lod}}
            depends_on: [nowhere]
          ask:
            type: lmm
        """,
    )
    assert found == [
        f"{at(tmp_path, 'f: $')}: stage 'load': input 'f' names unknown parameter 'foldr'"
        " (did you mean 'folder'?)",
        f"{at(tmp_path, 'x: $')}: stage 'load': input 'x' names unknown stage 'lod'"
        " (did you mean 'load'?)",
        f"{at(tmp_path, 'depends_on')}: stage 'load': depends_on names unknown stage 'nowhere'",
        f"{at(tmp_path, 'type: lmm')}: stage 'ask': unknown stage type 'lmm'"
        " (known: python, llm, validate, approval, evaluate)",
    ]


def test_bad_call_paths_name_the_stage_and_the_call_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: calls
        stages:
          a: {{call: "no_such_module_xyz:f"}}
          b: {{call: "{S}:no_such_function"}}
          c:
            call: {S}:NOT_CALLABLE
          d: {{call: "just_a_name"}}
        """,
    )
    assert found[0].startswith(
        f"{at(tmp_path, '  a:')}: stage 'a': call 'no_such_module_xyz:f':"
        " cannot import module 'no_such_module_xyz'"
    )
    assert found[1] == (
        f"{at(tmp_path, '  b:')}: stage 'b': call '{S}:no_such_function': "
        f"module '{S}' has no attribute 'no_such_function'"
    )
    assert (
        found[2] == f"{at(tmp_path, 'NOT_C')}: stage 'c': call '{S}:NOT_CALLABLE' is not callable"
    )
    assert found[3] == (
        f"{at(tmp_path, '  d:')}: stage 'd': call 'just_a_name':"
        " 'just_a_name' is not of the form module:attribute"
    )
    assert len(found) == 4


def test_inputs_must_match_the_function_arguments(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: args
        stages:
          load:
            call: {S}:load_documents
            inputs: {{limit: 3, recursive: true}}
          ctx:
            call: {S}:with_context
            inputs: {{text: hi, ctx: 1}}
          any:
            call: {S}:anything
            inputs: {{whatever: 1}}
        """,
    )
    assert found == [
        f"{at(tmp_path, 'recursive')}: stage 'load': input 'recursive' is not an argument of"
        " the function (its arguments: folder, limit)",
        f"{at(tmp_path, 'recursive')}: stage 'load': required argument(s) without an input: folder",
        f"{at(tmp_path, 'ctx: 1')}: stage 'ctx': 'ctx' is reserved for the stage context",
    ]


def test_a_stage_that_takes_ctx_needs_no_input_for_it(tmp_path: Path) -> None:
    p = compile_text(
        tmp_path,
        f"""
        pipeline: ctx
        stages:
          a: {{call: "{S}:with_context", inputs: {{text: hi}}}}
        """,
    )
    assert dict(p.stages["a"].accepts) == {"text": str}


def test_connected_stages_must_agree_on_types(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: typed
        params:
          n: {{type: str}}
        stages:
          nums:
            call: {S}:numbers
            inputs: {{n: "${{params.n}}"}}
          count:
            call: {S}:count
            inputs:
              chunks: ${{stages.nums}}
          load:
            call: {S}:load_documents
            inputs: {{folder: docs, limit: ten}}
          scaled:
            call: {S}:untyped
            inputs: {{value: "${{stages.nums}}"}}
        """,
    )
    assert found == [
        f"{at(tmp_path, '{n:')}: stage 'nums': input 'n' expects int but parameter 'n' is str",
        f"{at(tmp_path, 'chunks:')}: stage 'count': input 'chunks' expects list[str] but stage"
        " 'nums' returns list[int]",
        f"{at(tmp_path, 'ten')}: stage 'load': input 'limit' expects int but the constant 'ten'"
        " is str",
    ]


def test_pydantic_models_flow_between_stages(tmp_path: Path) -> None:
    text = f"""
        pipeline: models
        stages:
          load: {{call: "{S}:load_documents", inputs: {{folder: docs}}}}
          first: {{call: "{S}:first_document", inputs: {{docs: "${{stages.load}}"}}}}
          read: {{call: "{S}:read_document", inputs: {{doc: "${{stages.first}}"}}}}
        """
    p = compile_text(tmp_path, text)
    assert p.stages["first"].output is Document
    assert p.stages["read"].accepts["doc"] is Document
    bad = text.replace("read_document", "total_of").replace("{doc:", "{invoice:")
    assert problems(tmp_path, bad) == [
        f"{at(tmp_path, '  read:')}: stage 'read': input 'invoice' expects Invoice"
        " but stage 'first' returns Document"
    ]


def test_stages_come_in_dependency_order_stable_to_the_written_order(tmp_path: Path) -> None:
    p = compile_text(
        tmp_path,
        f"""
        pipeline: order
        stages:
          report: {{call: "{S}:anything", depends_on: [b, a]}}
          b: {{call: "{S}:anything", inputs: {{x: "${{stages.a}}"}}}}
          side: {{call: "{S}:anything"}}
          a: {{call: "{S}:anything"}}
          last: {{call: "{S}:anything"}}
        """,
    )
    assert list(p.stages) == ["side", "a", "b", "report", "last"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: many
        concurrency: 0
        stages:
          a: {{call: "{S}:numbers", inputs: {{n: "${{params.missing}}"}}, retries: -1}}
          b: {{type: nope}}
          c: {{call: "{S}:count", inputs: {{chunks: "${{stages.a}}"}}, timeout_s: 0}}
        """,
    )
    assert len(found) == 6, found
    for fragment in (
        ":2: pipeline 'many': concurrency must be an integer >= 1",
        ":4: stage 'a': retries must be an integer >= 0",
        ":4: stage 'a': input 'n' names unknown parameter 'missing'",
        ":5: stage 'b': unknown stage type 'nope'",
        ":6: stage 'c': timeout_s must be a number > 0",
        ":6: stage 'c': input 'chunks' expects list[str] but stage 'a' returns list[int]",
    ):
        assert any(fragment in p for p in found), fragment


def test_built_in_types_check_their_options_and_declare_their_output(tmp_path: Path) -> None:
    pytest.importorskip("aicp.pipeline.builtins.llm")
    found = problems(
        tmp_path,
        f"""
        pipeline: llm
        stages:
          ask:
            type: llm
            with: {{prompt: "Hi {{name}}"}}
            inputs: {{name: bob}}
          count: {{call: "{S}:count", inputs: {{chunks: "${{stages.ask}}"}}}}
        """,
    )
    assert found == [
        f"{at(tmp_path, 'with:')}: stage 'ask': option 'model' is required",
        f"{at(tmp_path, '  count:')}: stage 'count': input 'chunks' expects list[str] but stage"
        " 'ask' returns str",
    ]


class Base(BaseModel):
    x: int


class Child(Base):
    pass


@pytest.mark.parametrize(
    ("produced", "expected", "ok"),
    [
        (int, int, True),
        (int, float, True),
        (float, int, False),
        (bool, int, True),
        (Unknown, list[int], True),
        (list[int], Any, True),
        (list[int], list[float], True),
        (list[int], list[str], False),
        (list[int], list, True),
        (list, list[str], True),
        (list[str], tuple[str, ...], False),
        (dict[str, Child], dict[str, Base], True),
        (dict[str, Base], dict[str, Child], False),
        (Child, Base, True),
        (Base, Child, False),
        (int, Optional[int], True),  # noqa: UP045  # the old spelling is the point
        (None, int | None, True),
        (int | None, int, False),
        (int | str, int | str | None, True),
        (int | str, int, False),
        (tuple[int, str], tuple[int, str], True),
        (tuple[int, str], tuple[int, ...], False),
        (tuple[int, int], tuple[float, ...], True),
        (Literal["a", "b"], str, True),
        (Literal["a"], int, False),
        (str, object, True),
        (list[list[int]], list[list[str]], False),
    ],
)
def test_annotation_compatibility(produced: Any, expected: Any, ok: bool) -> None:
    assert compatible(produced, expected) is ok


@pytest.mark.parametrize(
    ("tp", "text"),
    [
        (list[str], "list[str]"),
        (dict[str, list[int]], "dict[str, list[int]]"),
        (int | None, "int | None"),
        (Optional[str], "str | None"),  # noqa: UP045  # the old spelling is the point
        (tuple[int, ...], "tuple[int, ...]"),
        (Document, "Document"),
        (Unknown, "unknown"),
        (Literal["a"], "Literal['a']"),
    ],
)
def test_types_render_as_written(tp: Any, text: str) -> None:
    assert render(tp) == text
