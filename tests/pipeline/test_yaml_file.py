"""The YAML front end: references, parameters, keys, lines, loading by path and by origin."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aicp.errors import ConfigError, PipelineInvalid
from aicp.pipeline.load import from_origin, load_pipeline
from aicp.pipeline.model import Pipeline, Ref, Unknown
from aicp.pipeline.yaml_file import load_yaml
from tests.pipeline.sample_stages import Document

ROOT = Path(__file__).resolve().parents[2]
RAG = Path(__file__).parent / "fixtures" / "rag.yaml"
S = "tests.pipeline.sample_stages"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(PipelineInvalid) as info:
        load_yaml(path)
    return info.value.problems


def line_of(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_a_stage_records_its_file_and_the_line_of_its_name() -> None:
    p = load_yaml(RAG)
    assert p.stages["chunk"].source == str(RAG)
    assert p.stages["chunk"].line == line_of(RAG, "  chunk:")
    assert p.stages["ship"].line == line_of(RAG, "  ship:")
    assert p.origin == {"kind": "yaml", "text": RAG.read_text(), "path": str(RAG)}


def test_stage_settings_and_options_are_read(tmp_path: Path) -> None:
    p = load_yaml(RAG)
    chunk = p.stages["chunk"]
    assert (chunk.retries, chunk.backoff_s, chunk.timeout_s) == (2, 0.5, 30)
    assert chunk.distributed and chunk.resources["num_cpus"] == 1
    assert p.stages["answer"].options == {
        "model": "chat",
        "prompt": "Answer {question} from {context}",
    }
    assert p.stages["count"].depends_on == ("chunk", "check")
    assert p.concurrency == 2 and p.description == "Answer a question from a folder"


def test_whole_reference_strings_are_references_and_other_strings_constants(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        f"""
        pipeline: refs
        params: {{who: x}}
        stages:
          a:
            call: {S}:anything
            inputs:
              p: ${{params.who}}
              text: "hello ${{params.who}}"
              literal: $${{params.who}}
              items: [1, "$${{stages.a}}"]
          b:
            call: {S}:anything
            inputs: {{s: "${{stages.a}}"}}
        """,
    )
    stages = load_yaml(path).stages
    assert stages["a"].inputs == {
        "p": Ref("param", "who"),
        "text": Ref("value", value="hello ${params.who}"),
        "literal": Ref("value", value="${params.who}"),
        "items": Ref("value", value=[1, "${stages.a}"]),
    }
    assert stages["b"].inputs == {"s": Ref("stage", "a")}
    assert stages["b"].depends_on == ("a",)


def test_a_misspelt_or_nested_reference_is_a_problem_with_its_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: refs
        stages:
          a:
            call: {S}:anything
            inputs:
              x: ${{stage.a}}
              y: ["${{params.who}}"]
            with: {{model: "${{params.model}}"}}
        """,
    )
    path = tmp_path / "p.yaml"
    assert found[0].startswith(f"{path}:6: stage 'a': input 'x': '${{stage.a}}' is not a reference")
    assert found[1].startswith(f"{path}:7: stage 'a': input 'y': '${{params.who}}': only a whole")
    assert found[2].startswith(f"{path}:8: stage 'a': with: '${{params.model}}': only a whole")
    assert found[3] == f"{path}:8: stage 'a': a python stage takes no options (model)"
    assert len(found) == 4


def test_params_take_a_type_a_default_or_a_shorthand_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        pipeline: params
        params:
          k: 3
          ratio: {{type: float, default: 1}}
          question: {{type: str}}
          doc: {{type: "{S}:Document"}}
          anything: {{type: any, default: null}}
          nothing: null
        stages:
          a: {{call: "{S}:anything"}}
        """,
    )
    params = load_yaml(path).params
    assert (params["k"].annotation, params["k"].default, params["k"].required) == (int, 3, False)
    assert (params["ratio"].annotation, params["ratio"].default) == (float, 1)
    assert params["question"].required and params["question"].annotation is str
    assert params["doc"].annotation is Document
    assert not params["anything"].required and params["nothing"].annotation is Unknown


def test_bad_param_types_and_defaults_name_the_param_and_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: params
        params:
          a: {{type: integer}}
          b: {{type: "{S}:numbers"}}
          c: {{type: int, default: many}}
        stages:
          s: {{call: "{S}:anything"}}
        """,
    )
    path = tmp_path / "p.yaml"
    assert found[0].startswith(f"{path}:3: param 'a': type 'integer'")
    assert found[1] == f"{path}:4: param 'b': type '{S}:numbers' is not a class"
    assert found[2] == f"{path}:5: param 'c': the default 'many' is not int"


def test_unknown_keys_anywhere_are_reported_together_with_their_lines(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: keys
        version: 2
        params:
          k: {{type: int, deafult: 3}}
        stages:
          a:
            call: {S}:anything
            retry: 3
        """,
    )
    path = tmp_path / "p.yaml"
    assert len(found) == 3
    assert found[0].startswith(f"{path}:2: the pipeline: unknown key 'version' (known: pipeline,")
    assert found[1].startswith(f"{path}:4: param 'k': unknown key 'deafult'")
    assert found[2].startswith(f"{path}:8: stage 'a': unknown key 'retry' (known: type, call,")


def test_duplicate_keys_are_problems(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: dup
        stages:
          a: {{call: "{S}:anything"}}
          a: {{call: "{S}:count"}}
          b:
            call: {S}:anything
            inputs: {{x: 1, x: 2}}
        """,
    )
    path = tmp_path / "p.yaml"
    assert found == [
        f"{path}:4: stages: duplicate key 'a'",
        f"{path}:7: stage 'b': inputs: duplicate key 'x'",
    ]


def test_tags_that_would_build_python_objects_are_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        f"""
        pipeline: tags
        stages:
          a:
            call: {S}:anything
            inputs: {{x: !!python/object/apply:os.system [echo hi]}}
        """,
    )
    assert found == [
        f"{tmp_path / 'p.yaml'}:5: stage 'a': input 'x': the tag"
        " 'tag:yaml.org,2002:python/object/apply:os.system' is not supported"
    ]
    found = problems(
        tmp_path,
        f"pipeline: t\nstages: {{a: {{call: '{S}:anything',"
        " inputs: {x: !!python/name:os.system ''}}}\n",
    )
    assert found == [
        f"{tmp_path / 'p.yaml'}:2: stage 'a': input 'x': could not determine a constructor"
        " for the tag 'tag:yaml.org,2002:python/name:os.system'"
    ]


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "pipeline: x\nstages:\n  a: {call: [\n")
    assert found[0].startswith(f"{tmp_path / 'p.yaml'}:4: invalid YAML")


def test_a_file_without_name_or_stages_or_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    assert problems(tmp_path, "description: nothing\n") == [
        f"{path}:1: the file has no `pipeline:` name",
        f"{path}:1: the file has no `stages:`",
        f"{path}:1: pipeline 'p': the pipeline has no stages",
    ]
    found = problems(tmp_path, "- a\n- b\n")
    assert found[0] == f"{path}:1: a pipeline file is a mapping with `pipeline:` and `stages:`"


def test_pipeline_invalid_is_a_config_error_listing_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "pipeline: x\nconcurrency: 0\nstages: {a: {retries: -1}}\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.status == 400 and info.value.code == "pipeline_invalid"
    message = str(info.value)
    assert message.startswith("invalid pipeline (3 problems):\n")
    assert f"{path}:2: pipeline 'x': concurrency must be an integer >= 1" in message
    assert f"{path}:3: stage 'a': retries must be an integer >= 0" in message
    assert f"{path}:3: stage 'a': a python stage needs `call: module:function`" in message


def test_load_pipeline_reads_a_relative_file_from_base_dir(tmp_path: Path) -> None:
    (tmp_path / "pipes").mkdir()
    (tmp_path / "pipes" / "rag.yml").write_text(RAG.read_text())
    p = load_pipeline("pipes/rag.yml", base_dir=tmp_path)
    assert p.name == "rag" and p.source == str(tmp_path / "pipes" / "rag.yml")
    with pytest.raises(PipelineInvalid, match="cannot read the pipeline file"):
        load_pipeline("missing.yaml", base_dir=tmp_path)


def _stage_shape(p: Pipeline) -> list[list[object]]:
    return [[s.name, list(s.depends_on)] for s in p.stages.values()]


def test_from_origin_rebuilds_a_yaml_pipeline_in_another_process(tmp_path: Path) -> None:
    path = tmp_path / "rag.yaml"
    path.write_text(RAG.read_text())
    p = load_yaml(path)
    path.unlink()  # the origin carries the text: the file is not needed again
    code = (
        "import json, sys\n"
        "from aicp.pipeline.load import from_origin\n"
        "p = from_origin(json.load(sys.stdin))\n"
        "print(json.dumps([p.stages['chunk'].source, p.stages['chunk'].line,"
        " [[s.name, list(s.depends_on)] for s in p.stages.values()]]))\n"
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
    source, line, shape = json.loads(out.stdout)
    assert (source, line) == (str(path), p.stages["chunk"].line)
    assert shape == _stage_shape(p)
    assert _stage_shape(from_origin(p.origin)) == _stage_shape(p)
