from __future__ import annotations

import base64
import json

import pytest

from aicp.guardrails.secrets import SecretsDetector, shannon_entropy

# Random characters in the documented shapes; none of these is a real credential.
RANDOM62 = "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xYzKq7Rb2Xc9Mn4Vt6Ly"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


JWT = ".".join(
    [
        b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()),
        b64url(json.dumps({"sub": "42"}).encode()),
        b64url(bytes(range(32))),
    ]
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow"
    + "A" * 58
    + "\nQ29yZQ==\n-----END RSA PRIVATE KEY-----"
)

KEYS = {
    "openai_key": "sk-proj-" + RANDOM62 * 3,
    "anthropic_key": "sk-ant-api03-" + RANDOM62 * 3 + "AA",
    "google_api_key": "AIza" + RANDOM62[:35],
    "aws_access_key": "AKIA" + "QW3E5R7T2Y4U6I7O",
    "github_token": "ghp_" + RANDOM62[:36],
    "github_pat": "github_pat_" + RANDOM62[:22] + "_" + (RANDOM62 * 2)[:59],
    "slack_token": "xoxb-123456789012-1234567890123-" + RANDOM62[:24],
    "slack_webhook": "https://hooks.slack.com/services/T0AB12CD3/B0AB12CD3/" + RANDOM62[:24],
    "stripe_key": "sk_live_" + RANDOM62,
    "gitlab_token": "glpat-" + RANDOM62[:20],
    "huggingface_token": "hf_" + RANDOM62,
    "npm_token": "npm_" + RANDOM62[:36],
    "pypi_token": "pypi-AgEIcHlwaS5vcmc" + RANDOM62 * 2,
    "sendgrid_key": "SG." + RANDOM62[:22] + "." + (RANDOM62 * 2)[:43],
    "jwt": JWT,
    "private_key": PEM,
}


@pytest.mark.parametrize(("kind", "value"), sorted(KEYS.items()))
def test_each_key_format_is_found_with_its_exact_span(kind: str, value: str) -> None:
    kind = "github_token" if kind == "github_pat" else kind  # two formats, one kind
    text = f"here it is: {value} -- why does it fail?"
    found = [f for f in SecretsDetector().scan(text) if f.kind == kind]
    assert [(f.start, f.end) for f in found] == [(12, 12 + len(value))]


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        ("DATABASE_URL=postgres://app:S3cr3t-pw.9@db:5432/x", "connection_password", "S3cr3t-pw.9"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_key",
         "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ('password = "hunter2-Secret!"', "generic_secret", "hunter2-Secret!"),
        ("DB_PASSWORD=Summer2024x!", "generic_secret", "Summer2024x!"),
        ('{"api_key": "ax4IRi1fCVLmmAWmX06KBP1XaXW0pKBT"}', "generic_secret",
         "ax4IRi1fCVLmmAWmX06KBP1XaXW0pKBT"),
    ],
)  # fmt: skip
def test_named_secrets_are_found_where_their_value_is(text: str, kind: str, secret: str) -> None:
    found = [text[f.start : f.end] for f in SecretsDetector().scan(text) if f.kind == kind]
    assert found == [secret]


@pytest.mark.parametrize(
    "text",
    [
        "Set OPENAI_API_KEY=sk-... in your shell first.",
        "api_key = os.environ['OPENAI_API_KEY']",
        "password = getpass.getpass()",
        "DATABASE_URL=postgres://user:password@localhost:5432/app",
        "postgres://app:${DB_PASSWORD}@db/app and redis://:<password>@cache",
        "Replace <your-api-key> with the key; token: ${{ secrets.GITHUB_TOKEN }}",
        'secret_key = "changeme" and password: ********',
        "use scikit-learn, not sk-learn; ask-the-team-for-the-real-value-please",
        "max_tokens=1000000, token_budget: 4096, keyboard = qwerty",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8, id 6f1c2a9e-0b7d-4c3e-9a51-2d8f7e6b4c10",
        "-----BEGIN CERTIFICATE----- starts a certificate, not a key",
        "eyJhbGciOi is the start of a JWT header, eyJub3QiOiJqd3QifQ.eyJhIjoxfQ.x is not one",
        "passwords must be at least 12 characters long",
    ],
)
def test_placeholders_variables_and_lookalikes_are_not_secrets(text: str) -> None:
    assert SecretsDetector().scan(text) == []


def test_an_unfinished_private_key_is_reported_up_to_where_it_stops() -> None:
    text = "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA"
    (finding,) = SecretsDetector().scan(text)
    assert (finding.kind, finding.start, finding.end) == ("private_key", 5, len(text))


def test_kinds_limit_what_is_reported() -> None:
    text = f"{KEYS['github_token']} and {KEYS['stripe_key']}"
    assert [f.kind for f in SecretsDetector(kinds=["stripe_key"]).scan(text)] == ["stripe_key"]
    with pytest.raises(ValueError, match="unknown kinds"):
        SecretsDetector(kinds=["bitcoin_wallet"])


def test_entropy_separates_random_values_from_words() -> None:
    assert shannon_entropy(RANDOM62) > 4.5 > shannon_entropy("passwordpassword")
