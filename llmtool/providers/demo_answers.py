"""What the offline demo model says: a deterministic, useful answer built from the prompt alone.

A JSON schema in the request gets a JSON document that validates against it, so structured-output
templates can be shown without a key.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llmtool.providers.base import ProviderRequest

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def answer(model: str, request: ProviderRequest) -> str:
    prompt = request.messages[-1].content if request.messages else ""
    if request.json_schema is not None:
        return json.dumps(instance_of(request.json_schema, prompt), indent=2)
    if model == "echo":
        return prompt
    return _markdown_answer(prompt, request)


# How many seconds demo:thinker thinks, by effort (its default is medium).
THINKING_SECONDS = {"minimal": 0.6, "low": 1.0, "medium": 2.0, "high": 3.5, "xhigh": 5.0, "max": 6.0}


def reasoning(model: str, request: ProviderRequest) -> str:
    """What demo:thinker thinks before answering (a summary, as reasoning models show it);
    empty for the other demo models and for effort none."""
    if model != "thinker" or request.reasoning_effort == "none":
        return ""
    prompt = request.messages[-1].content if request.messages else ""
    words = prompt.split()
    topic = " ".join(words[:8]) + ("…" if len(words) > 8 else "") or "the question"
    steps = [
        f"**Understanding the request.** The user asks about {topic}. ",
        "I should work out what they actually need before writing anything.\n\n",
        "**Planning the answer.** A short summary first, then the key points, then a next step. ",
        "Keep it concrete and avoid padding.\n\n",
    ]
    if request.json_schema is not None:
        steps.append("**Format.** The answer must be JSON matching the schema, nothing else.\n\n")
    steps.append("**Checking.** The plan covers the question; time to answer.")
    return "".join(steps)


def _markdown_answer(prompt: str, request: ProviderRequest) -> str:
    words = prompt.split()
    topic = " ".join(words[:8]) + ("…" if len(words) > 8 else "") or "your question"
    sentences = [s for s in _SENTENCE.split(" ".join(words)) if s][:3]
    key_points = "\n".join(f"- {s}" for s in sentences) or "- (the prompt was empty)"
    turn = sum(1 for m in request.messages if m.role == "user")
    system = f"\n> Following the system prompt: *{request.system[:120]}*\n" if request.system else ""
    return f"""## About: {topic}
{system}
This answer comes from **llmtool's offline demo model**. It streams at a realistic pace so you can
try everything — Stop, regenerate, templates, validation — without an API key. This is turn {turn}
of the conversation ({len(words)} words in your last message).

### What you asked, point by point
{key_points}

### What a real model would do next
1. **Read** the prompt and the conversation so far.
2. **Answer** in Markdown, streaming token by token.
3. **Stop** the moment you press *Stop*: the provider connection is closed, not just hidden.

| Setting | Environment variable |
|---|---|
| OpenAI | `OPENAI_API_KEY` |
| Anthropic | `ANTHROPIC_API_KEY` |
| Local server (Ollama, vLLM…) | `LLMTOOL_ENDPOINTS__OLLAMA__BASE_URL` |

```python
# The same run from Python
from llmtool.service import LLMService, RunRequest
run = LLMService().start(RunRequest(model="demo:assistant", prompt="Hello"))
```

Set a key and pick another model to get a real answer."""


def instance_of(schema: dict[str, Any], prompt: str = "", name: str = "") -> Any:
    """A small value that satisfies common JSON Schema keywords (enum, const, type, bounds)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return _pick(schema["enum"], prompt)
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return instance_of(schema[key][0], prompt, name)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        return instance_of(merged, prompt, name)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: instance_of(sub, prompt, key) for key, sub in properties.items()}
    if kind == "array":
        count = max(schema.get("minItems", 1), 1)
        return [instance_of(schema.get("items", {"type": "string"}), prompt, name) for _ in range(count)]
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            middle = (low + high) / 2  # e.g. a confidence between 0 and 1 reads 0.5, not 0
        else:
            middle = low if low is not None else (high if high is not None and high < 1 else 1)
        return int(middle) if kind == "integer" else float(middle)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, prompt, name)


def _string(schema: dict[str, Any], prompt: str, name: str) -> str:
    if schema.get("format") == "date" or name.endswith("date"):
        return "2026-01-01"
    if schema.get("format") == "email":
        return "someone@example.com"
    # A named field gets a placeholder saying what it holds; a bare string echoes the prompt.
    text = f"(demo {name.replace('_', ' ')})" if name else " ".join(prompt.split()[:12]) or "example"
    max_length = schema.get("maxLength")
    if max_length is not None:
        text = text[:max_length]
    return text.ljust(schema.get("minLength", 0), ".")


def _pick(options: list[Any], prompt: str) -> Any:
    """The option the prompt mentions first, if any: makes classification demos plausible."""
    lowered = prompt.lower()
    mentioned = [o for o in options if isinstance(o, str) and o.lower() in lowered]
    return min(mentioned, key=lambda o: lowered.index(o.lower())) if mentioned else options[0]
