"""The guard stages built from settings: a misspelt kind is a config error naming its key."""

from __future__ import annotations

import pytest

from aicp.config import GuardrailSettings
from aicp.errors import ConfigError
from aicp.guardrails.output import GuardOutput
from aicp.guardrails.stages import GuardInput
from aicp.observability.events import EventBus


def test_an_unknown_kind_names_the_key() -> None:
    settings = GuardrailSettings.model_validate({"input": {"pii": {"kinds": ["emial"]}}})
    with pytest.raises(ConfigError) as caught:
        GuardInput(settings, EventBus())
    assert "guardrails.input.pii.kinds" in caught.value.message and "emial" in caught.value.message
    out = GuardrailSettings.model_validate(
        {"output": {"secrets": {"action": "redact", "kinds": ["openai"]}}}
    )
    with pytest.raises(ConfigError, match=r"guardrails\.output\.secrets\.kinds"):
        GuardOutput(out, EventBus())


def test_configured_kinds_limit_what_is_found() -> None:
    settings = GuardrailSettings.model_validate({"input": {"pii": {"kinds": ["email"]}}})
    pii = GuardInput(settings, EventBus()).checks[0][0]
    found = pii.scan("mail jane@example.com or call +1 415 555 0100")
    assert {f.kind for f in found} == {"email"}
