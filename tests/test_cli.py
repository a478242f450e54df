"""The `aicp` command line: config validate in process, serve/chat/models as real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from aicp.cli.main import app
from aicp.testing.server import free_port

ROOT = Path(__file__).resolve().parents[1]
AICP = str(Path(sys.executable).with_name("aicp"))
EXAMPLE = ROOT / "examples" / "aicp.yaml"

#: Variables that would make discovery find real providers on a developer's machine.
PROVIDER_VARS = (
    "AICP_CONFIG",
    "AICP_MASTER_KEY",
    "AICP_URL",
    "AICP_API_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OLLAMA_HOST",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
    "TOGETHER_API_KEY",
    "OPENROUTER_API_KEY",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)


def clean_environ() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    # A gateway of its own: never the checkout's ./.aicp database or pepper.
    env["AICP_DATA_DIR"] = tempfile.mkdtemp(prefix="aicp-cli-test-")
    return env


# --- aicp config validate ---------------------------------------------------------------------

runner = CliRunner()

GOOD = """\
providers:
  flaky:
    type: mock
    options: {failure_rate: 0.1}
models:
  - name: smart
    strategy: weighted
    deployments:
      - {provider: mock, model: mock-1, weight: 2}
      - {provider: flaky, model: mock-1}
aliases:
  default: smart
groups:
  all:
    models: [smart]
"""


def test_validate_good_file(tmp_path: Path, clean_env: None) -> None:
    path = tmp_path / "aicp.yaml"
    path.write_text(GOOD)
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
    assert "2 providers, 1 models, 1 aliases, 1 groups" in result.output


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("server:\n  port: 1\n  portt: 2\n", ["line 3", "unknown key 'server.portt'"]),
        ("server:\n  port: lots\n", ["line 2", "server.port"]),
        (
            "providers:\n  up:\n    type: openai\n    api_key: ${NOT_SET_ANYWHERE_42}\n",
            ["line 4", "NOT_SET_ANYWHERE_42"],
        ),
        (
            "models:\n  - name: m\n    deployments:\n      - {provider: ghost, model: x}\n",
            ["line 4", "'ghost'"],
        ),
        ("aliases:\n  a: b\n  b: a\n", ["alias cycle"]),
        ("providers:\n  x:\n    type: no-such-type\n", ["unknown type 'no-such-type'"]),
        ("server: [\n", ["invalid YAML"]),
        (
            "guardrails:\n  input:\n    pii: {action: redact, kinds: [email, shoe_size]}\n",
            ["guardrails.input.pii.kinds", "shoe_size"],
        ),
        ("policy:\n  dir: /nonexistent/aicp-policies\n", ["/nonexistent/aicp-policies"]),
    ],
)
def test_validate_bad_file(tmp_path: Path, clean_env: None, text: str, words: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    for word in words:
        assert word in result.output
    assert "Traceback" not in result.output


def test_validate_missing_file(tmp_path: Path, clean_env: None) -> None:
    result = runner.invoke(app, ["config", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output


def test_example_config_validates(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    for name in ("AICP_MASTER_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY"):
        monkeypatch.setenv(name, "dummy-" + name.lower())
    result = runner.invoke(app, ["config", "validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_example_config_never_holds_a_credential_by_value() -> None:
    from aicp.config import load_settings
    from aicp.errors import ConfigError

    for line in EXAMPLE.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("api_key", "master_key"):
            assert value.strip().startswith("${"), line
    # Without the variables set, loading fails and names the first one missing.
    with pytest.raises(ConfigError, match="AICP_MASTER_KEY"):
        load_settings(EXAMPLE, env={})


def test_serve_with_a_bad_config_exits_2(tmp_path: Path, clean_env: None) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server:\n  colour: red\n")
    result = runner.invoke(app, ["serve", "--config", str(path), "--port", str(free_port())])
    assert result.exit_code == 2
    assert "line 2" in result.output and "server.colour" in result.output


# --- aicp serve, chat and models as real processes -------------------------------------------


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url


def start(args: list[str], port: int, timeout: float = 30) -> Served:
    proc = subprocess.Popen(
        [AICP, "serve", "--port", str(port), *args],
        env=clean_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"aicp serve exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return Served(proc, url)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop(proc)
    raise AssertionError("aicp serve did not become ready in time")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        # The group holds the workers this process started; it is ours alone.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc.stdout:
        proc.stdout.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    s = start([], free_port())
    try:
        yield s
    finally:
        stop(s.proc)


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AICP, *args], env=clean_environ(), capture_output=True, text=True, timeout=timeout
    )


def test_serve_answers_health_and_chat(served: Served) -> None:
    assert httpx.get(served.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(served.url + "/ready").json()
    assert ready == {"status": "ready", "providers": ["mock"]}
    resp = httpx.post(
        served.url + "/v1/chat/completions",
        json={"model": "mock/mock-1", "messages": [{"role": "user", "content": "ping"}]},
    )
    assert resp.status_code == 200
    assert resp.json()["choices"][0]["message"]["content"] == "Mock reply to: ping"


def test_chat_command(served: Served) -> None:
    result = run_cli("chat", "hello", "--url", served.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Mock reply to: hello"


def test_chat_command_streams(served: Served) -> None:
    result = run_cli("chat", "hello there", "--stream", "--url", served.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Mock reply to: hello there\n"


def test_chat_command_with_an_unknown_model_fails(served: Served) -> None:
    result = run_cli("chat", "hi", "--model", "ghost/model", "--url", served.url)
    assert result.returncode == 1
    assert "404" in result.stderr and "ghost/model" in result.stderr


def test_chat_command_without_a_gateway_fails_clearly() -> None:
    result = run_cli("chat", "hi", "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot reach the gateway" in result.stderr


def test_models_command(served: Served) -> None:
    result = run_cli("models", "--url", served.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["mock/mock-1", "mock/mock-embed"]


def test_models_url_from_env(served: Served) -> None:
    env = {**clean_environ(), "AICP_URL": served.url}
    result = subprocess.run([AICP, "models"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "mock/mock-1" in result.stdout.split()


def test_serve_with_config_and_master_key(tmp_path: Path) -> None:
    path = tmp_path / "aicp.yaml"
    path.write_text("server:\n  master_key: ${TEST_MASTER}\naliases:\n  default: mock/mock-1\n")
    port = free_port()
    env = {**clean_environ(), "TEST_MASTER": "sk-cli-master"}
    proc = subprocess.Popen(
        [AICP, "serve", "--config", str(path), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        denied = run_cli("chat", "hi", "--model", "default", "--url", url)
        assert denied.returncode == 1 and "401" in denied.stderr
        allowed = run_cli(
            "chat", "hi", "--model", "default", "--url", url, "--key", "sk-cli-master"
        )
        assert allowed.returncode == 0, allowed.stderr
        assert allowed.stdout.strip() == "Mock reply to: hi"
    finally:
        stop(proc)


def test_serve_with_two_workers(tmp_path: Path) -> None:
    served = start(["--workers", "2"], free_port(), timeout=45)
    try:
        workers = _children(served.proc.pid)
        deadline = time.monotonic() + 30
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = _children(served.proc.pid)
        assert len(workers) == 2, workers
        # Each worker answers on its own: freeze one, the other serves; then swap.
        for frozen in workers:
            os.kill(frozen, signal.SIGSTOP)
            try:
                for _ in range(5):
                    resp = httpx.post(
                        served.url + "/v1/chat/completions",
                        json={
                            "model": "mock/mock-1",
                            "messages": [{"role": "user", "content": "w"}],
                        },
                        timeout=10,
                        headers={"connection": "close"},
                    )
                    assert resp.status_code == 200
                    assert resp.json()["choices"][0]["message"]["content"] == "Mock reply to: w"
            finally:
                os.kill(frozen, signal.SIGCONT)
    finally:
        stop(served.proc)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "aicp serve exited"
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("aicp serve did not become ready in time")


def _children(pid: int) -> list[int]:
    """The worker processes of `pid` (not multiprocessing's resource tracker)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"resource_tracker" not in cmdline:
            out.append(int(entry.name))
    return sorted(out)
