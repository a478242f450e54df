"""Helpers for tests, ours and yours: a fake upstream and a gateway on a real server.

    from aicp.testing import FakeUpstream, GatewayServer, MockProvider

`FakeUpstream` speaks the OpenAI, Anthropic, Gemini and Bedrock wire formats,
streaming included, and injects faults on demand. `GatewayServer` runs the
gateway under uvicorn on a loopback port in a background thread.
"""

from aicp.providers.mock import MockProvider
from aicp.testing.server import GatewayServer
from aicp.testing.upstream import FakeUpstream, Fault

__all__ = ["FakeUpstream", "Fault", "GatewayServer", "MockProvider"]
