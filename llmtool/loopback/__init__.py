"""Loopback fake of the OpenAI (Responses, Chat Completions) and Anthropic (Messages) HTTP APIs.

A real HTTP/1.1 server on 127.0.0.1 that streams byte-exact SSE and can inject faults
(HTTP errors, TCP resets, stalls, error events, truncated or malformed streams)::

    with LoopbackServer() as server:
        client = AsyncOpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
        server.enqueue(PRESETS["rate_limit"], Scenario())

It also streams reasoning (``Scenario(reasoning=..., think_seconds=...)``), can refuse structured
output, and serves ``GET /v1/models`` from ``LoopbackServer(models=[...])``.
"""

from .models import DEFAULT_MODELS, ModelSpec
from .records import RecordedRequest, structured_output
from .scenarios import DEFAULT_REASONING, DEFAULT_TEXT, PRESETS, Scenario
from .server import LoopbackServer
from .wire import split_tokens

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_REASONING",
    "DEFAULT_TEXT",
    "PRESETS",
    "LoopbackServer",
    "ModelSpec",
    "RecordedRequest",
    "Scenario",
    "split_tokens",
    "structured_output",
]
