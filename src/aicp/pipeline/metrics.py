"""Evaluation metrics: each scores one case (an output and its reference) from 0 to 1.

`METRICS` holds the built-ins; any `module:function` is a metric too, a function
`(output, reference, options) -> float` (a bool counts as 1 or 0). A metric that
cannot score a case (a judge's answer that says no score) raises `Unscorable`:
the case is left out of that metric's mean and the reason kept.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aicp.pipeline.builtins.options import BOOL, MAPPING, NUMBER, STR, Opt, hint, import_function
from aicp.pipeline.checks import schema_error, vet_schema
from aicp.pipeline.model import StageContext, StageFailed


class Unscorable(Exception):
    """This case gets no score from this metric; the message says why."""


_ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class Case:
    output: Any
    reference: Any = _ABSENT
    #: What the output answered (a question), when the inputs give it; the judge sees it.
    input: Any = _ABSENT

    @property
    def has_reference(self) -> bool:
        return self.reference is not _ABSENT


Score = Callable[[Case, Mapping[str, Any], StageContext], float]


@dataclass(frozen=True, slots=True)
class Metric:
    score: Score
    #: Its options; None: any (a custom metric gets whatever the stage gives it).
    options: Mapping[str, Opt] | None = field(default_factory=dict)
    needs_reference: bool = True
    vet: Callable[[Mapping[str, Any]], list[str]] | None = None


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def _normal(text: str, opts: Mapping[str, Any]) -> str:
    if opts.get("normalize_whitespace"):
        text = " ".join(text.split())
    return text.casefold() if opts.get("ignore_case") else text


def _exact_match(case: Case, opts: Mapping[str, Any], ctx: StageContext) -> float:
    out, ref = case.output, case.reference
    if isinstance(out, str) and isinstance(ref, str):
        return float(_normal(out, opts) == _normal(ref, opts))
    return float(out == ref)


def _contains(case: Case, opts: Mapping[str, Any], ctx: StageContext) -> float:
    return float(_normal(text_of(case.reference), opts) in _normal(text_of(case.output), opts))


def _parsed(output: Any) -> Any:
    """The output as JSON data: a string is parsed; ValueError if it does not parse."""
    return json.loads(output) if isinstance(output, str | bytes) else output


def _json_valid(case: Case, opts: Mapping[str, Any], ctx: StageContext) -> float:
    try:
        _parsed(case.output)
    except ValueError:
        return 0.0
    return 1.0


def _json_schema(case: Case, opts: Mapping[str, Any], ctx: StageContext) -> float:
    try:
        data = _parsed(case.output)
    except ValueError:
        return 0.0
    return float(schema_error(opts["schema"], data) is None)


# --- the judge -------------------------------------------------------------------------

JUDGE_SYSTEM = (
    "You grade an AI system's output. Read the rubric, the input and the reference answer "
    "when there are any, then the output. Reply with only a score from 0 to 1 "
    "(1: fully meets the rubric, 0: not at all), or with only yes or no."
)
DEFAULT_RUBRIC = "Is the output correct, and does it agree with the reference answer?"
_VERDICTS: Mapping[str, float] = {
    "yes": 1.0,
    "no": 0.0,
    "pass": 1.0,
    "fail": 0.0,
    "true": 1.0,
    "false": 0.0,
    "correct": 1.0,
    "incorrect": 0.0,
}
_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"


def judge_prompt(case: Case, rubric: str) -> str:
    parts = [f"Rubric:\n{rubric}"]
    if case.input is not _ABSENT:
        parts.append(f"Input:\n{text_of(case.input)}")
    if case.has_reference:
        parts.append(f"Reference answer:\n{text_of(case.reference)}")
    parts.append(f"Output:\n{text_of(case.output)}")
    return "\n\n".join(parts)


def _in_unit(x: float, answer: str) -> float:
    if not 0.0 <= x <= 1.0:  # NaN too
        raise Unscorable(f"the judge's score {x:g} is not within 0..1: {answer[:120]!r}")
    return x


def parse_judgement(answer: str) -> float:
    """A judge's answer as a score in 0..1: a number, a fraction ("4/5"), a percentage,
    yes/no (pass/fail, true/false, correct/incorrect), or JSON with a `score`."""
    text = answer.strip().strip("`").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        data = data.get("score")
    if isinstance(data, bool):
        return float(data)
    if isinstance(data, int | float):
        return _in_unit(float(data), answer)
    # The first word, or the first after a label such as "Verdict:".
    for pattern in (r"([a-z]+)", r"[a-z ]{1,20}:\s*([a-z]+)"):
        word = re.match(pattern, text.lower())
        if word and word.group(1) in _VERDICTS:
            return _VERDICTS[word.group(1)]
    if m := re.search(_NUMBER + r"\s*/\s*" + _NUMBER, text):
        top, bottom = float(m.group(1)), float(m.group(2))
        if bottom > 0:
            return _in_unit(top / bottom, answer)
    if m := re.search(_NUMBER + r"\s*%", text):
        return _in_unit(float(m.group(1)) / 100, answer)
    if m := re.search(_NUMBER, text):
        return _in_unit(float(m.group(1)), answer)
    raise Unscorable(f"the judge's answer has no score: {answer[:120]!r}")


def _llm_judge(case: Case, opts: Mapping[str, Any], ctx: StageContext) -> float:
    messages = [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": judge_prompt(case, opts.get("rubric") or DEFAULT_RUBRIC)},
    ]
    params = {"temperature": opts.get("temperature", 0)}
    reply = ctx.llm.chat(opts["judge_model"], messages, **params)
    ctx.record_receipt(reply.receipt_id, reply.cost_usd)
    return parse_judgement(reply.text)


_CASE: Mapping[str, Opt] = {"ignore_case": Opt(BOOL)}

METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "exact_match": Metric(_exact_match, {**_CASE, "normalize_whitespace": Opt(BOOL)}),
        "contains": Metric(_contains, {**_CASE, "normalize_whitespace": Opt(BOOL)}),
        "json_valid": Metric(_json_valid, needs_reference=False),
        "json_schema": Metric(
            _json_schema,
            {"schema": Opt(MAPPING, required=True)},
            needs_reference=False,
            vet=vet_schema,
        ),
        "llm_judge": Metric(
            _llm_judge,
            {
                "judge_model": Opt(STR, required=True),
                "rubric": Opt(STR),
                "temperature": Opt(NUMBER),
            },
            needs_reference=False,
        ),
    }
)


def custom(path: str) -> Metric:
    """The metric at `module:function`; ValueError when there is none."""
    func = import_function(path)

    def score(case: Case, opts: Mapping[str, Any], ctx: StageContext) -> float:
        reference = case.reference if case.has_reference else None
        value = func(case.output, reference, dict(opts))
        if isinstance(value, bool):
            return float(value)
        if not isinstance(value, int | float) or math.isnan(value):
            raise StageFailed(f"metric {path!r} returned {value!r}, not a number")
        return float(value)

    return Metric(score, options=None)


def lookup(name: str) -> Metric:
    """The metric called `name` (built-in or `module:function`); ValueError for none."""
    if ":" in name:
        return custom(name)
    found = METRICS.get(name)
    if found is None:
        raise ValueError(f"unknown metric {name!r} ({hint(name, METRICS)})")
    return found
