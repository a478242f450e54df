"""The `evaluate` stage type: score outputs against references with metrics (metrics.py).

Inputs: `outputs` and `references` (lists of the same length; `references` may
be left out when no metric needs them; an optional `inputs` list of the same
length is shown to a judge), or `cases`: a list of `{output, reference, input}`.

Options:

- `metrics` (required): a list of metric names, `module:function`s, or mappings
  `{name: NAME, label: KEY, ...the metric's options}` (`label` names the result
  when one metric is used twice);
- `threshold`: `{label: minimum}`, the mean each named metric must reach, or a
  number when there is one metric; below it the stage raises `GateFailed`.

The output: `{"metrics": {label: mean}, "per_case": [{index, scores, notes?}],
"count": n}`, plus `"unscored": {label: cases}` when a metric could not score
some; each mean is also logged as a metric of the stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aicp.pipeline import metrics
from aicp.pipeline.builtins.options import LIST, NUMBER, STR, Opt, entry_problems, problems
from aicp.pipeline.metrics import Case, Metric, Unscorable
from aicp.pipeline.model import GateFailed, Stage, StageContext, StageFailed

OPTIONS: Mapping[str, Opt] = {
    "metrics": Opt(LIST, required=True),
    "threshold": Opt(("a number or a mapping of metric to minimum", lambda v: True)),
}
ENTRY_KEYS: Mapping[str, Opt] = {"name": Opt(STR, required=True), "label": Opt(STR)}
INPUTS = ("outputs", "references", "inputs", "cases")
#: Cases kept in a failed gate's report.
REPORTED_CASES = 50


@dataclass(frozen=True, slots=True)
class Use:
    """One metric as a stage uses it."""

    label: str
    name: str
    metric: Metric
    options: Mapping[str, Any]


def uses(options: Mapping[str, Any]) -> list[Use]:
    """The stage's metrics, resolved (ValueError for an unknown one)."""
    out: list[Use] = []
    for entry in options.get("metrics") or []:
        if isinstance(entry, str):
            out.append(Use(entry, entry, metrics.lookup(entry), {}))
            continue
        name = entry["name"]
        opts = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
        out.append(Use(entry.get("label", name), name, metrics.lookup(name), opts))
    return out


def _entry_problems(i: int, entry: Any) -> list[str]:
    where = f"metrics[{i}]"
    if isinstance(entry, Mapping):
        name = entry.get("name")
    elif isinstance(entry, str):
        name, entry = entry, {"name": entry}
    else:
        return [f"{where} must be a metric's name or a mapping with 'name'"]
    if not isinstance(name, str):
        return [f"{where}: key 'name' is required"]
    try:
        metric = metrics.lookup(name)
    except ValueError as exc:
        return [f"{where}: {exc}"]
    out = entry_problems(entry, ENTRY_KEYS, metric.options, metric.vet)
    return [f"{where}: {p}" for p in out]


def _threshold_problems(threshold: Any, labels: list[str]) -> list[str]:
    if NUMBER[1](threshold):
        if len(labels) == 1:
            return []
        return [
            "a threshold that is a number needs exactly one metric; else map each to its minimum"
        ]
    if not isinstance(threshold, Mapping):
        return ["option 'threshold' must be a number or a mapping of metric to minimum"]
    out = [
        f"threshold: {k!r} is not one of the stage's metrics ({', '.join(labels)})"
        for k in threshold
        if k not in labels
    ]
    out.extend(
        f"threshold: {k!r} must be a number" for k, v in threshold.items() if not NUMBER[1](v)
    )
    return out


def _input_problems(stage: Stage, need_references: bool) -> list[str]:
    names = set(stage.inputs)
    out = [
        f"unknown input {n!r} (an evaluate stage takes {', '.join(INPUTS)})"
        for n in sorted(names - set(INPUTS))
    ]
    if "cases" in names:
        if names & {"outputs", "references", "inputs"}:
            out.append("input 'cases' excludes 'outputs', 'references' and 'inputs'")
    elif "outputs" not in names:
        out.append("an evaluate stage needs an input 'outputs' (or 'cases')")
    elif need_references and "references" not in names:
        out.append("input 'references' is required by the metrics used")
    return out


def thresholds(options: Mapping[str, Any], labels: list[str]) -> dict[str, float]:
    t = options.get("threshold")
    if t is None:
        return {}
    if isinstance(t, Mapping):
        return {str(k): float(v) for k, v in t.items()}
    return {labels[0]: float(t)}


def _as_list(inputs: Mapping[str, Any], name: str) -> list[Any]:
    value = inputs[name]
    if not isinstance(value, list | tuple):
        raise StageFailed(f"input {name!r} must be a list, not {type(value).__name__}")
    return list(value)


def cases_of(inputs: Mapping[str, Any], need_references: bool) -> list[Case]:
    if "cases" in inputs:
        out = []
        for i, c in enumerate(_as_list(inputs, "cases")):
            if not isinstance(c, Mapping) or "output" not in c:
                raise StageFailed(f"cases[{i}] must be a mapping with 'output' (and 'reference')")
            if need_references and "reference" not in c:
                raise StageFailed(f"cases[{i}] has no 'reference', which the metrics need")
            out.append(Case(**{k: c[k] for k in ("output", "reference", "input") if k in c}))
        return out
    outputs = _as_list(inputs, "outputs")
    columns = {n: _as_list(inputs, n) for n in ("references", "inputs") if n in inputs}
    for name, column in columns.items():
        if len(column) != len(outputs):
            raise StageFailed(
                f"inputs 'outputs' and {name!r} differ in length: {len(outputs)} and {len(column)}"
            )
    if need_references and "references" not in columns:
        raise StageFailed("input 'references' is required by the metrics used")
    refs, ins = columns.get("references"), columns.get("inputs")
    return [
        Case(
            output,
            **({"reference": refs[i]} if refs is not None else {}),
            **({"input": ins[i]} if ins is not None else {}),
        )
        for i, output in enumerate(outputs)
    ]


def score_all(ctx: StageContext, used: list[Use], cases: list[Case]) -> dict[str, Any]:
    per_case: list[dict[str, Any]] = [{"index": i, "scores": {}} for i in range(len(cases))]
    means: dict[str, float | None] = {}
    unscored: dict[str, int] = {}
    for use in used:
        scores: list[float] = []
        for row, case in zip(per_case, cases, strict=True):
            try:
                score = use.metric.score(case, use.options, ctx)
            except Unscorable as exc:
                row["scores"][use.label] = None
                row.setdefault("notes", {})[use.label] = str(exc)
                unscored[use.label] = unscored.get(use.label, 0) + 1
                continue
            row["scores"][use.label] = score
            scores.append(score)
        means[use.label] = sum(scores) / len(scores) if scores else None
    out: dict[str, Any] = {"metrics": means, "per_case": per_case, "count": len(cases)}
    if unscored:
        out["unscored"] = unscored
    return out


class EvaluateType:
    def check(self, stage: Stage) -> list[str]:
        options = stage.options
        out = problems(options, OPTIONS)
        entries = options.get("metrics")
        if not isinstance(entries, list):
            return out
        if not entries:
            out.append("option 'metrics' must name at least one metric")
        found = [p for i, e in enumerate(entries) for p in _entry_problems(i, e)]
        out.extend(found)
        if found:
            return out
        used = uses(options)
        labels = [u.label for u in used]
        out.extend(
            f"metric {lb!r} is used twice; give one a 'label'"
            for lb in sorted({lb for lb in labels if labels.count(lb) > 1})
        )
        if "threshold" in options:
            out.extend(_threshold_problems(options["threshold"], labels))
        out.extend(_input_problems(stage, any(u.metric.needs_reference for u in used)))
        return out

    def output_of(self, stage: Stage) -> Any:
        return dict[str, Any]

    def run(self, ctx: StageContext, inputs: Mapping[str, Any]) -> Any:
        used = uses(ctx.stage.options)
        cases = cases_of(inputs, any(u.metric.needs_reference for u in used))
        if not cases:
            raise StageFailed("there is nothing to evaluate: no cases")
        result = score_all(ctx, used, cases)
        for label, mean in result["metrics"].items():
            if mean is not None:
                ctx.log_metric(label, mean)
        self._gate(ctx.stage, result, thresholds(ctx.stage.options, [u.label for u in used]))
        return result

    def _gate(self, stage: Stage, result: dict[str, Any], minimum: dict[str, float]) -> None:
        means = result["metrics"]
        below = [k for k, m in minimum.items() if means.get(k) is None or means[k] < m]
        if not below:
            return
        said = ", ".join(
            f"{k} {'unscored' if means.get(k) is None else f'{means[k]:.3g}'} < {minimum[k]:g}"
            for k in below
        )
        report = {
            **result,
            "per_case": result["per_case"][:REPORTED_CASES],
            "threshold": minimum,
            "below": below,
        }
        raise GateFailed(f"evaluation gate {stage.name!r} failed: {said}", report=report)


EVALUATE = EvaluateType()
