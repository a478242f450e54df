"""What the pipelines API shows of a pipeline, and who may see or run what."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from aicp.api.authz import is_admin, is_team_admin
from aicp.pipeline.model import Pipeline
from aicp.plane.exchange import Principal

#: An option value that names code to import (a pydantic model, a custom check or metric).
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def describe(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "pipeline": pipeline.name,
        "description": pipeline.description,
        "concurrency": pipeline.concurrency,
        "params": {
            n: {"required": prm.required, "default": prm.default}
            for n, prm in pipeline.params.items()
        },
        "stages": [
            {"name": s.name, "type": s.type, "depends_on": list(s.depends_on)}
            for s in pipeline.stages.values()
        ],
    }


def yaml_imports_code(text: str) -> bool:
    """Would compiling or running this YAML pipeline import code in the gateway? (python
    stages, `call`s, `module:Class` parameter types, import paths among options). Read
    with the safe loader only, so that nothing is imported to find out."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return False  # the compiler reports it
    if not isinstance(doc, dict):
        return False
    stages = doc.get("stages")
    for stage in (stages or {}).values() if isinstance(stages, dict) else ():
        if not isinstance(stage, dict):
            continue
        if stage.get("type", "python") == "python" or "call" in stage:
            return True
        if _names_code(stage.get("with")):
            return True
    params = doc.get("params")
    for param in (params or {}).values() if isinstance(params, dict) else ():
        if isinstance(param, dict) and ":" in str(param.get("type", "")):
            return True
    return False


def _names_code(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_IMPORT_PATH.match(value))
    if isinstance(value, Mapping):
        return any(_names_code(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_names_code(v) for v in value)
    return False


def may_see(p: Principal, key_id: str | None, team_id: str | None) -> bool:
    if is_admin(p):
        return True
    if team_id is not None and is_team_admin(p, team_id):
        return True
    return key_id is not None and key_id == p.key_id
