"""The Python front end: tracing @pipeline functions, naming, ordering; agreement with YAML."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aicp.errors import PipelineInvalid
from aicp.pipeline.dsl import after, approval, evaluate, llm, pipeline, stage, validate
from aicp.pipeline.load import from_origin, load_pipeline
from aicp.pipeline.model import Pipeline, Ref
from aicp.pipeline.yaml_file import load_yaml
from tests.pipeline import sample_stages
from tests.pipeline.sample_stages import Document, chunk, count, load_documents, rag

ROOT = Path(__file__).resolve().parents[2]
RAG_YAML = Path(__file__).parent / "fixtures" / "rag.yaml"
HERE = str(Path(__file__).resolve())


def shape(p: Pipeline) -> dict[str, Any]:
    """Everything about a pipeline except where it was written."""
    return {
        "pipeline": (p.name, p.concurrency, p.description),
        "params": {n: (q.annotation, q.default, q.required) for n, q in p.params.items()},
        "stages": [
            (
                s.name,
                s.type,
                s.call,
                s.depends_on,
                dict(s.inputs),
                dict(s.options),
                (s.retries, s.backoff_s, s.timeout_s, dict(s.resources)),
                (s.output, dict(s.accepts)),
            )
            for s in p.stages.values()
        ],
    }


def problems_of(func: Any) -> list[str]:
    with pytest.raises(PipelineInvalid) as info:
        func.compile()
    return list(info.value.problems)


def test_the_yaml_and_the_python_pipeline_compile_to_the_same_structure() -> None:
    pytest.importorskip("aicp.pipeline.builtins.llm")
    pytest.importorskip("aicp.pipeline.builtins.validate")
    pytest.importorskip("aicp.pipeline.builtins.approval")
    assert shape(rag.compile()) == shape(load_yaml(RAG_YAML))


def test_a_stage_function_outside_a_pipeline_is_a_plain_function() -> None:
    docs = load_documents("here", limit=2)
    assert docs == [
        Document(source="here/0.txt", text="text 0"),
        Document(source="here/1.txt", text="text 1"),
    ]
    assert chunk(docs, size=3) == ["tex", "t 0", "tex", "t 1"]
    assert count.named("n")(["a", "b"]) == 2


def test_built_in_builders_and_after_need_a_pipeline() -> None:
    with pytest.raises(RuntimeError, match=r"llm\(\) records a stage"):
        llm("x", model="chat", prompt="hi")
    with pytest.raises(RuntimeError, match="inside a @pipeline function"), after():
        pass


def test_calling_a_pipeline_function_is_not_running_it() -> None:
    with pytest.raises(TypeError, match=r"\.compile\(\) gives the Pipeline"):
        rag()
    assert rag.compile() is rag.compile()


def test_a_python_pipeline_records_where_it_was_written() -> None:
    p = rag.compile()
    assert p.origin == {"kind": "python", "ref": "tests.pipeline.sample_stages:rag"}
    stage_line = inspect.getsourcelines(chunk.func)[1]
    assert (p.stages["chunk"].source, p.stages["chunk"].line) == (
        sample_stages.__file__,
        stage_line,
    )
    assert p.stages["chunk"].func is chunk.func
    source = inspect.getsource(sample_stages).splitlines()
    assert source[(p.stages["answer"].line or 0) - 1].strip() == "answer = llm("


def test_a_stage_used_twice_is_numbered_and_named_uses_get_their_name() -> None:
    renamed = stage(name="split")(chunk.func)

    @pipeline
    def twice(folder: str) -> None:
        docs = load_documents(folder)
        chunk(docs)
        chunk(docs, size=10)
        chunk.named("small")(docs, size=5)
        renamed(docs)
        renamed(docs)

    p = twice.compile()
    assert list(p.stages) == ["load_documents", "chunk", "chunk_2", "small", "split", "split_2"]
    assert p.stages["small"].inputs == {
        "docs": Ref("stage", "load_documents"),
        "size": Ref("value", value=5),
    }
    assert p.params["folder"].required
    assert p.origin["ref"].endswith("<locals>.twice")


def test_ordering_only_dependencies_by_after() -> None:
    pytest.importorskip("aicp.pipeline.builtins.approval")

    @pipeline(name="ordered")
    def ordered(folder: str = "docs") -> None:
        docs = load_documents(folder)
        first = load_documents.named("other")(folder)
        with after(docs, first):
            count(["a"])
            with after(docs):
                count(["b"])
        approval("ship", after=[first])

    p = ordered.compile()
    assert p.stages["count"].depends_on == ("load_documents", "other")
    assert p.stages["count_2"].depends_on == ("load_documents", "other")
    assert p.stages["ship"].depends_on == ("other",)
    assert p.downstream("other") == ["count", "count_2", "ship"]


def test_mistakes_while_tracing_are_reported_with_the_stage() -> None:
    pytest.importorskip("aicp.pipeline.builtins.llm")
    line = inspect.getsourcelines(count.func)[1]
    where = f"{sample_stages.__file__}:{line}: stage"

    @pipeline
    def wrong(question: str = "q") -> None:
        docs = load_documents("docs")
        # Wrong on purpose; mypy sees it too, through the stage's own signature.
        count([docs])  # type: ignore[list-item]
        count(chunks=["a"], extra=1)  # type: ignore[call-arg]
        count()  # type: ignore[call-arg]
        llm("ask", model=question, prompt="{q}", inputs={"q": question})
        with after(question):
            pass

    found = problems_of(wrong)
    assert (
        f"{where} 'count': input 'chunks' holds a stage output or parameter inside a container;"
        " pass each one as its own input (or combine them in a stage)"
    ) in found
    assert (
        f"{where} 'count_2': input 'extra' is not an argument of the function"
        " (its arguments: chunks)"
    ) in found
    assert f"{where} 'count_3': required argument(s) without an input: chunks" in found
    assert any(
        p.startswith(f"{HERE}:")
        and p.endswith(
            ": stage 'ask': option 'model' is a stage output or parameter;"
            " options are constants, pass it through inputs="
        )
        for p in found
    )
    assert (
        "pipeline 'wrong': after: <param 'question' of pipeline 'wrong'>"
        " is not a stage of pipeline 'wrong'"
    ) in found


def test_a_handle_of_another_pipeline_is_refused() -> None:
    kept: list[Any] = []

    @pipeline
    def first(folder: str = "docs") -> None:
        kept.append(load_documents(folder))

    @pipeline
    def second() -> None:
        chunk(kept[0])

    first.compile()
    (problem,) = problems_of(second)
    assert problem.endswith(
        "stage 'chunk': input 'docs' is <stage 'load_documents' of pipeline 'first'>,"
        " a handle of another pipeline"
    )


def test_a_handle_is_not_a_value_while_tracing() -> None:
    @pipeline
    def branching(folder: str = "docs") -> None:
        docs = load_documents(folder)
        if docs:
            count(["a"])

    with pytest.raises(
        TypeError, match="has no value while the pipeline is traced; decide inside a stage"
    ):
        branching.compile()


def test_duplicate_stage_names_are_a_problem() -> None:
    pytest.importorskip("aicp.pipeline.builtins.validate")

    @pipeline
    def dup() -> None:
        validate("gate", inputs={"value": 1}, checks=[{"check": "not_empty"}])
        validate("gate", inputs={"value": 2}, checks=[{"check": "not_empty"}])

    (problem,) = problems_of(dup)
    assert problem.startswith(f"{HERE}:") and problem.endswith(
        "stage 'gate': a second stage of that name"
    )


def test_parameters_get_their_type_from_the_annotation_or_the_default() -> None:
    @stage
    def echo(value: Any) -> Any:
        return value

    @pipeline(concurrency=3)
    def params(a: int, b="x", c: float = 1, d=None) -> None:  # type: ignore[no-untyped-def]
        echo(a)

    p = params.compile()
    assert {n: (q.annotation, q.required) for n, q in p.params.items() if n != "d"} == {
        "a": (int, True),
        "b": (str, False),
        "c": (float, False),
    }
    assert p.concurrency == 3 and p.name == "params"


def test_load_pipeline_imports_a_pipeline_function_or_object() -> None:
    assert load_pipeline("tests.pipeline.sample_stages:rag") is rag.compile()
    assert load_pipeline("tests.pipeline.test_dsl:SAMPLE") is SAMPLE
    with pytest.raises(PipelineInvalid, match="is StageFunction, not a @pipeline function"):
        load_pipeline("tests.pipeline.sample_stages:chunk")
    with pytest.raises(PipelineInvalid, match="has no attribute 'nope'"):
        load_pipeline("tests.pipeline.sample_stages:nope")
    with pytest.raises(PipelineInvalid, match="name a pipeline file"):
        load_pipeline("rag")


SAMPLE = Pipeline(name="sample", stages={})


def test_from_origin_rebuilds_a_python_pipeline_in_another_process() -> None:
    p = rag.compile()
    code = (
        "import json, sys\n"
        "from aicp.pipeline.load import from_origin\n"
        "p = from_origin(json.load(sys.stdin))\n"
        "print(json.dumps([[s.name, list(s.depends_on)] for s in p.stages.values()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(dict(p.origin)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    expected = [[s.name, list(s.depends_on)] for s in p.stages.values()]
    assert json.loads(out.stdout) == expected
    assert from_origin(p.origin) is p
    with pytest.raises(PipelineInvalid, match="unknown kind 'zip'"):
        from_origin({"kind": "zip"})


def test_built_in_stage_options_are_checked_by_their_type() -> None:
    pytest.importorskip("aicp.pipeline.builtins.evaluate")

    @pipeline
    def scored(question: str = "q") -> None:
        evaluate("score", inputs={"outputs": ["a"], "references": ["a"]}, metrics=[])

    (problem,) = problems_of(scored)
    line = inspect.getsourcelines(scored.func)[1] + 2  # @pipeline, def, evaluate(
    assert problem.startswith(f"{HERE}:{line}: stage 'score': ")
    assert "metrics" in problem
