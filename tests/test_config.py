"""Settings: strict YAML with file and line in every error, ${ENV} interpolation, zero-config."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from aicp.config import ProviderSettings, Settings, load_settings
from aicp.errors import ConfigError
from aicp.providers.discovery import providers_from_env


def write(tmp_path: Path, text: str, name: str = "aicp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    return load_settings(write(tmp_path, text), env=env or {})


def config_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    message = info.value.message
    assert str(tmp_path / "aicp.yaml") in message
    return message


# --- strictness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("serverr:\n  port: 1\n", 1, "serverr"),
        ("server:\n  port: 1\n  prot: 2\n", 3, "server.prot"),
        (
            "providers:\n  up:\n    type: openai\n    base_url: http://h\n    api_keyy: k\n",
            5,
            "providers.up.api_keyy",
        ),
        (
            "models:\n  - name: m\n    deployments:\n      - provider: mock\n"
            "        model: mock-1\n        weigth: 2\n",
            6,
            "models.0.deployments.0.weigth",
        ),
        ("reliability:\n  breaker:\n    open_secs: 3\n", 3, "reliability.breaker.open_secs"),
        ("groups:\n  g:\n    models: [a]\n    stratgy: weighted\n", 4, "groups.g.stratgy"),
    ],
)
def test_unknown_key_at_any_depth_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    message = config_error(tmp_path, text)
    assert f"line {line}:" in message
    assert f"unknown key {key!r}" in message


def test_every_unknown_key_is_reported_at_once(tmp_path: Path) -> None:
    message = config_error(tmp_path, "server:\n  a: 1\n  b: 2\n")
    assert "line 2: unknown key 'server.a'" in message
    assert "line 3: unknown key 'server.b'" in message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("server:\n  port: many\n", 2, "server.port"),
        ("server:\n  max_body_bytes: 0\n", 2, "server.max_body_bytes"),
        ("reliability:\n  breaker:\n    failure_rate: 2\n", 3, "failure_rate"),
        ("models:\n  - name: m\n    deployments: []\n", 3, "models.0.deployments"),
        ("models:\n  - name: m\n    deployments: [{provider: mock, model: x}]\n"
         "    strategy: fastest\n", 4, "models.0.strategy"),
        ("providers: [openai]\n", 1, "providers"),
        ("server: 5\n", 1, "server"),
        ("aliases:\n  - a\n", 1, "aliases"),
    ],
)  # fmt: skip
def test_wrong_types_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    message = config_error(tmp_path, text)
    assert f"line {line}:" in message
    assert words in message


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, "server:\n  port: 1\n  host: h\n  port: 2\n")
    assert "line 4" in message
    assert "duplicate key 'port'" in message


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    message = config_error(tmp_path, "server: [\n")
    assert "invalid YAML" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "mapping" in config_error(tmp_path, "- a\n- b\n")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load_settings(tmp_path / "missing.yaml", env={})


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, "")
    assert settings.server.port == 4000
    assert set(settings.providers) == {"mock"}


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load(tmp_path, "server:\n  port: 5000\n")
    with pytest.raises(ValueError):
        settings.server.port = 1  # type: ignore[misc]


def test_yaml_merge_keys_are_supported(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
        providers:
          a: &common
            type: openai
            base_url: http://a/v1
            discover_models: false
          b:
            <<: *common
            base_url: http://b/v1
        """,
    )
    b = settings.providers["b"]
    assert (b.type, b.base_url, b.discover_models) == ("openai", "http://b/v1", False)


def test_unknown_key_inside_a_merge_is_still_rejected(tmp_path: Path) -> None:
    message = config_error(
        tmp_path,
        """
        providers:
          a: &common
            type: openai
            base_url: http://a/v1
          b:
            <<: *common
            colour: blue
        """,
    )
    assert "line 7: unknown key 'providers.b.colour'" in message


# --- ${ENV} interpolation ----------------------------------------------------------------------

PROVIDER_WITH_ENV = """
providers:
  up:
    type: openai
    base_url: ${UP_URL:-http://localhost:8000/v1}
    api_key: ${UP_KEY}
    headers:
      x-team: "team-${TEAM:-none}-x"
server:
  port: ${PORT:-4000}
"""


def test_env_interpolation_and_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, PROVIDER_WITH_ENV, {"UP_KEY": "sk-from-env", "PORT": "4321"})
    up = settings.providers["up"]
    assert up.api_key == "sk-from-env"
    assert up.base_url == "http://localhost:8000/v1"
    assert up.headers == {"x-team": "team-none-x"}
    assert settings.server.port == 4321


def test_env_value_wins_over_the_default(tmp_path: Path) -> None:
    env = {"UP_KEY": "k", "UP_URL": "https://gpu-box/v1", "TEAM": "search"}
    up = load(tmp_path, PROVIDER_WITH_ENV, env).providers["up"]
    assert up.base_url == "https://gpu-box/v1"
    assert up.headers == {"x-team": "team-search-x"}


def test_empty_default_is_allowed(tmp_path: Path) -> None:
    text = "providers:\n  up:\n    type: openai\n    base_url: http://h/v1\n    api_key: x${K:-}\n"
    assert load(tmp_path, text).providers["up"].api_key == "x"


def test_missing_env_var_is_named_with_file_and_line(tmp_path: Path) -> None:
    message = config_error(tmp_path, PROVIDER_WITH_ENV)
    assert "UP_KEY" in message
    assert "line 5" in message
    assert "not set" in message


def test_env_values_are_not_reinterpreted_as_yaml(tmp_path: Path) -> None:
    text = "providers:\n  up:\n    type: openai\n    base_url: http://h/v1\n    api_key: ${K}\n"
    key = load(tmp_path, text, {"K": "abc: [1, 2] # not a comment"}).providers["up"].api_key
    assert key == "abc: [1, 2] # not a comment"


def test_aicp_config_env_var_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 4555\n")
    assert load_settings(env={"AICP_CONFIG": str(path)}).server.port == 4555


def test_master_key_from_env_unless_the_file_sets_it(tmp_path: Path) -> None:
    assert load(tmp_path, "", {"AICP_MASTER_KEY": "mk"}).server.master_key == "mk"
    from_file = load(tmp_path, "server:\n  master_key: file-key\n", {"AICP_MASTER_KEY": "mk"})
    assert from_file.server.master_key == "file-key"


# --- references -----------------------------------------------------------------------------


def test_model_on_an_unconfigured_provider_is_named(tmp_path: Path) -> None:
    message = config_error(
        tmp_path,
        """
        models:
          - name: smart
            deployments:
              - provider: mock
                model: mock-1
              - provider: openai
                model: gpt-4o
        """,
    )
    assert "'smart'" in message
    assert "'openai'" in message
    assert "not configured" in message
    assert "line 6" in message


def test_model_on_a_discovered_provider_is_fine(tmp_path: Path) -> None:
    text = "models:\n  - name: smart\n    deployments:\n      - {provider: openai, model: gpt-4o}\n"
    settings = load(tmp_path, text, {"OPENAI_API_KEY": "sk-test"})
    assert settings.models[0].deployments[0].provider == "openai"


def test_file_provider_replaces_the_discovered_one(tmp_path: Path) -> None:
    text = "providers:\n  openai:\n    type: openai\n    base_url: http://proxy/v1\n"
    settings = load(tmp_path, text, {"OPENAI_API_KEY": "sk-env"})
    assert settings.providers["openai"].base_url == "http://proxy/v1"
    assert settings.providers["openai"].api_key is None


def test_bad_provider_name_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, "providers:\n  'a b':\n    type: mock\n")
    assert "'a b'" in message


# --- secrets ---------------------------------------------------------------------------------


def test_repr_never_shows_secrets(tmp_path: Path) -> None:
    text = """
    server:
      master_key: sk-master-secret
    providers:
      up:
        type: openai
        base_url: http://h/v1
        api_key: sk-provider-secret
        headers:
          x-extra-auth: sk-header-secret
    """
    settings = load(tmp_path, text)
    for shown in (repr(settings), str(settings), repr(settings.providers["up"]),
                  str(settings.providers["up"]), repr(settings.server)):  # fmt: skip
        assert "sk-provider-secret" not in shown
        assert "sk-master-secret" not in shown
        assert "sk-header-secret" not in shown
    assert "http://h/v1" in repr(settings.providers["up"])
    assert settings.providers["up"].api_key == "sk-provider-secret"


def test_repr_of_discovered_providers_hides_keys() -> None:
    settings = load_settings(env={"OPENAI_API_KEY": "sk-env-secret", "GROQ_API_KEY": "gsk-x"})
    assert "sk-env-secret" not in repr(settings)
    assert "gsk-x" not in repr(settings)


def test_config_error_does_not_echo_a_secret_value(tmp_path: Path) -> None:
    text = "providers:\n  up:\n    type: openai\n    api_key: [sk-oops-secret]\n"
    message = config_error(tmp_path, text)
    assert "line 4" in message
    assert "sk-oops-secret" not in message


# --- zero-config discovery -------------------------------------------------------------------


def discovered(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    found = providers_from_env(env)
    # Whatever discovery finds must also pass settings validation.
    load_settings(env=env)
    return found


def test_mock_is_always_present() -> None:
    assert discovered({}) == {"mock": {"type": "mock"}}
    assert "mock" in discovered({"OPENAI_API_KEY": "k"})
    assert load_settings(env={}).providers["mock"].type == "mock"


def test_openai_from_env() -> None:
    assert discovered({"OPENAI_API_KEY": "sk-1"})["openai"] == {"type": "openai", "api_key": "sk-1"}
    found = discovered({"OPENAI_API_KEY": "sk-1", "OPENAI_BASE_URL": "http://proxy/v1"})
    assert found["openai"] == {"type": "openai", "api_key": "sk-1", "base_url": "http://proxy/v1"}
    assert "openai" not in discovered({"OPENAI_BASE_URL": "http://proxy/v1"})
    assert "openai" not in discovered({"OPENAI_API_KEY": ""})


def test_anthropic_from_env() -> None:
    found = discovered({"ANTHROPIC_API_KEY": "sk-ant", "ANTHROPIC_BASE_URL": "http://a"})
    assert found["anthropic"] == {"type": "anthropic", "api_key": "sk-ant", "base_url": "http://a"}
    assert "base_url" not in discovered({"ANTHROPIC_API_KEY": "sk-ant"})["anthropic"]


def test_gemini_from_env() -> None:
    assert discovered({"GEMINI_API_KEY": "g1"})["gemini"] == {"type": "gemini", "api_key": "g1"}
    # GOOGLE_API_KEY is the google-genai SDK's other name; GEMINI_API_KEY wins.
    assert discovered({"GOOGLE_API_KEY": "g2"})["gemini"]["api_key"] == "g2"
    both = discovered({"GEMINI_API_KEY": "g1", "GOOGLE_API_KEY": "g2"})
    assert both["gemini"]["api_key"] == "g1"


def test_azure_from_env() -> None:
    env = {
        "AZURE_OPENAI_API_KEY": "az",
        "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
        "OPENAI_API_VERSION": "2024-10-21",
    }
    assert discovered(env)["azure"] == {
        "type": "azure",
        "api_key": "az",
        "base_url": "https://res.openai.azure.com",
        "api_version": "2024-10-21",
    }
    assert "azure" not in discovered({"AZURE_OPENAI_API_KEY": "az"})
    assert "azure" not in discovered({"AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com"})


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:11434/v1"),
        ("localhost:11434", "http://localhost:11434/v1"),
        ("0.0.0.0", "http://127.0.0.1:11434/v1"),
        ("0.0.0.0:9999", "http://127.0.0.1:9999/v1"),
        (":1234", "http://127.0.0.1:1234/v1"),
        ("gpu-box", "http://gpu-box:11434/v1"),
        ("http://gpu-box:11434", "http://gpu-box:11434/v1"),
        ("http://gpu-box:11434/", "http://gpu-box:11434/v1"),
        ("http://gpu-box", "http://gpu-box:80/v1"),
        ("https://ollama.example.com", "https://ollama.example.com:443/v1"),
        ("https://example.com/ollama", "https://example.com:443/ollama/v1"),
        ("[::1]", "http://[::1]:11434/v1"),
        ("[::1]:1337", "http://[::1]:1337/v1"),
        ("::1", "http://[::1]:11434/v1"),
        ("[::]", "http://[::1]:11434/v1"),
        (" 10.0.0.5 ", "http://10.0.0.5:11434/v1"),
        ('"10.0.0.5"', "http://10.0.0.5:11434/v1"),
    ],
)
def test_ollama_host_in_its_several_forms(value: str, url: str) -> None:
    found = discovered({"OLLAMA_HOST": value})["ollama"]
    assert found == {"type": "ollama", "base_url": url}


def test_ollama_is_local() -> None:
    from aicp.providers.presets import PRESETS

    assert PRESETS["ollama"].local


def test_aws_credentials_find_bedrock() -> None:
    keys = {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "eu-west-1"}
    assert discovered(keys)["bedrock"] == {"type": "bedrock", "region": "eu-west-1"}
    assert discovered({"AWS_PROFILE": "dev"})["bedrock"]["region"] == "us-east-1"
    default_region = {"AWS_PROFILE": "dev", "AWS_DEFAULT_REGION": "ap-south-1"}
    assert discovered(default_region)["bedrock"]["region"] == "ap-south-1"
    assert "bedrock" not in discovered({"AWS_ACCESS_KEY_ID": "AKIA"})
    # Credentials never end up in settings: the provider reads them the AWS way.
    assert "AKIA" not in repr(discovered(keys)["bedrock"])


def test_google_application_credentials_find_vertex() -> None:
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": "/secrets/sa.json",
        "GOOGLE_CLOUD_PROJECT": "proj",
        "GOOGLE_CLOUD_LOCATION": "europe-west4",
    }
    assert discovered(env)["vertex"] == {
        "type": "vertex",
        "project": "proj",
        "region": "europe-west4",
    }
    bare = discovered({"GOOGLE_APPLICATION_CREDENTIALS": "/secrets/sa.json"})["vertex"]
    assert bare["region"] == "global"


@pytest.mark.parametrize(
    ("var", "name"),
    [
        ("GROQ_API_KEY", "groq"),
        ("MISTRAL_API_KEY", "mistral"),
        ("DEEPSEEK_API_KEY", "deepseek"),
        ("XAI_API_KEY", "xai"),
        ("TOGETHER_API_KEY", "together"),
        ("OPENROUTER_API_KEY", "openrouter"),
    ],
)
def test_preset_keys_find_their_vendor(var: str, name: str) -> None:
    found = discovered({var: "key-123"})
    assert found[name] == {"type": name, "api_key": "key-123"}
    assert set(found) == {"mock", name}


def test_nothing_is_found_without_its_variables() -> None:
    env = {"HOME": "/root", "PATH": "/usr/bin", "OPENAI_BASE_URL": "http://x"}
    assert set(discovered(env)) == {"mock"}


def test_everything_at_once() -> None:
    env = {
        "OPENAI_API_KEY": "a",
        "ANTHROPIC_API_KEY": "b",
        "GEMINI_API_KEY": "c",
        "AZURE_OPENAI_API_KEY": "d",
        "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com",
        "OLLAMA_HOST": "localhost",
        "AWS_PROFILE": "p",
        "GOOGLE_APPLICATION_CREDENTIALS": "/sa.json",
        "GROQ_API_KEY": "e",
    }
    names = set(load_settings(env=env).providers)
    assert names == {
        "mock",
        "openai",
        "anthropic",
        "gemini",
        "azure",
        "ollama",
        "bedrock",
        "vertex",
        "groq",
    }


def test_provider_settings_type_is_required() -> None:
    with pytest.raises(ValueError):
        ProviderSettings.model_validate({"base_url": "http://x"})


def test_learning_weights_must_be_known_and_positive(tmp_path: Path) -> None:
    path = tmp_path / "aicp.yaml"
    for text, word in (
        ("learning:\n  weights: {speed: 1}\n", "speed"),
        ("learning:\n  weights: {cost: -1}\n", ">= 0"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=word):
            load_settings(path, env={})
