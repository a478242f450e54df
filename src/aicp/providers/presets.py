"""OpenAI-compatible vendors as data: a base URL, headers, what they lack.

A preset is used as a provider `type:`; `base_url`, `headers` and
`api_key` in the config override the preset's.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Preset:
    base_url: str
    #: Environment variable holding the API key, by the vendor's own convention.
    key_env: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Request fields the vendor rejects; removed before sending.
    drop_params: frozenset[str] = frozenset()
    #: Runs on the user's own machine or network (allowed in offline mode).
    local: bool = False
    #: Serves OpenAI's Responses API (`POST /responses`): a Responses client's body is
    #: passed through; for a vendor without it the body is translated to chat completions.
    responses: bool = False


PRESETS: dict[str, Preset] = {
    "openai": Preset("https://api.openai.com/v1", key_env="OPENAI_API_KEY", responses=True),
    "ollama": Preset("http://127.0.0.1:11434/v1", local=True),
    "vllm": Preset("http://127.0.0.1:8000/v1", local=True),
    "lmstudio": Preset("http://127.0.0.1:1234/v1", local=True),
    "llamacpp": Preset("http://127.0.0.1:8080/v1", local=True),
    "xai": Preset("https://api.x.ai/v1", key_env="XAI_API_KEY"),
    "deepseek": Preset("https://api.deepseek.com/v1", key_env="DEEPSEEK_API_KEY"),
    "groq": Preset(
        "https://api.groq.com/openai/v1",
        key_env="GROQ_API_KEY",
        drop_params=frozenset({"logprobs", "top_logprobs", "logit_bias"}),
    ),
    "together": Preset("https://api.together.xyz/v1", key_env="TOGETHER_API_KEY"),
    "mistral": Preset(
        "https://api.mistral.ai/v1",
        key_env="MISTRAL_API_KEY",
        drop_params=frozenset({"user", "metadata", "logit_bias", "store"}),
    ),
    "openrouter": Preset("https://openrouter.ai/api/v1", key_env="OPENROUTER_API_KEY"),
}
