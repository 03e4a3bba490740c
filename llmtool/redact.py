"""Keep secrets out of the page and the store: run events are masked by the service before they
enter a run's log (`mask_event`), and every text that reaches the browser goes through a `Redactor`.

Keys are never put in components or state, but an error message (or a model echoing its prompt)
could still carry one, or a base URL with `?api-key=` in it (a `user:password@` base URL is refused
by the settings). Each secret is also masked URL-encoded and in base64. Streamed text goes through a
`StreamMasker`, so a key echoed in pieces never shows a fragment.

    redact = Redactor.from_settings(settings)
    redact("could not connect to https://proxy/v1?api-key=s3cr3t")   # '… https://proxy/v1?api-key=***'
    redact("/srv/app/prompts/classify.md:35: unknown variable")  # 'classify.md:35: unknown variable'

It also keeps the server's layout off the page: a path inside the prompts directory is shown
relative to it (as a template's file:line), the directory itself by its name.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

from llmtool.events import (
    Completed,
    Failed,
    Interrupted,
    Notice,
    ReasoningDelta,
    Retrying,
    RunEvent,
    Started,
    Stopped,
    TextDelta,
    Usage,
    Validated,
)
from llmtool.settings import Settings

MASK = "***"
# The text fields of each event kind that could carry a key (an echoed prompt, an error message).
_TEXT_FIELDS: dict[type, tuple[str, ...]] = {
    kind: tuple(name for name in ("text", "reasoning", "message", "reason") if name in kind.model_fields)
    for kind in (Started, Retrying, Notice, ReasoningDelta, TextDelta, Usage, Validated, Completed, Stopped,
                 Failed, Interrupted)
}
_SHORTEST_SECRET = 4  # shorter strings would mask ordinary words


def encoded_forms(secret: str) -> set[str]:
    """The secret as it could be echoed back: itself, URL-encoded, base64 (as in HTTP Basic)."""
    raw = secret.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    # base64 padding is often dropped when echoed; the unpadded form still identifies the secret.
    forms = {secret, quote(secret, safe=""), *encoded, *(form.rstrip("=") for form in encoded)}
    return {form for form in forms if len(form) >= _SHORTEST_SECRET}


class Redactor:
    def __init__(self, secrets: Iterable[str], directories: Iterable[Path] = ()) -> None:
        unique = {form for s in secrets if s and len(s) >= _SHORTEST_SECRET for form in encoded_forms(s)}
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted(unique, key=len, reverse=True)
        self._first_chars = frozenset(secret[0] for secret in self.secrets)
        self._longest = max((len(secret) for secret in self.secrets), default=0)
        self._directories: list[tuple[str, re.Pattern[str], re.Pattern[str], str]] = []
        for directory in directories:
            forms = {str(directory.absolute()), str(directory.resolve())} - {"", os.sep}
            for form in sorted(forms, key=len, reverse=True):
                start = rf"(?<![\w.~/-]){re.escape(form.rstrip(os.sep))}"
                inside = re.compile(start + rf"{re.escape(os.sep)}(?=[\w.-])")  # …/prompts/x.md → x.md
                itself = re.compile(start + r"(?![\w.-])")  # …/prompts → prompts
                self._directories.append((form.rstrip(os.sep), inside, itself, directory.resolve().name or form))

    def __call__(self, text: str) -> str:
        text = self.mask_secrets(text)
        for form, inside, itself, name in self._directories:
            if form in text:
                text = itself.sub(name, inside.sub("", text))
        return text

    def mask_secrets(self, text: str) -> str:
        """Only the keys and credentials masked (paths left alone): what the service applies to
        every event before it enters a run's log, so no store, export or replay holds a key."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def held_back(self, text: str) -> int:
        """How many trailing characters of `text` could still become a secret with what comes
        next: the longest suffix that begins some secret (0 when none does)."""
        start = max(len(text) - self._longest + 1, 0)
        for index in range(start, len(text)):
            if text[index] in self._first_chars:
                tail = text[index:]
                if any(secret.startswith(tail) for secret in self.secrets):
                    return len(text) - index
        return 0

    def stream(self) -> StreamMasker:
        return StreamMasker(self)

    def mask_event(self, event: RunEvent) -> RunEvent:
        """The event with its texts (answer, message, reason, problems) masked; itself if clean.
        Runs on every delta: only the fields each event kind has are looked at."""
        if not self.secrets:
            return event
        updates: dict[str, object] = {}
        for name in _TEXT_FIELDS.get(type(event), ()):
            value = getattr(event, name)
            if value:
                masked = self.mask_secrets(value)
                if masked != value:
                    updates[name] = masked
        problems = getattr(event, "problems", None) if isinstance(event, Validated) else None
        if problems:
            masked_problems = [self.mask_secrets(problem) for problem in problems]
            if masked_problems != problems:
                updates["problems"] = masked_problems
        return event.model_copy(update=updates) if updates else event

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        return cls(settings_secrets(settings), directories=[Path(settings.prompts_dir)])


class StreamMasker:
    """Masks a text that arrives in pieces: a secret cut across deltas is masked whole. It holds
    back only the shortest tail that could still become a secret and releases it as soon as it
    cannot; `flush()` releases what is held when the text ends."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.held = ""

    def feed(self, delta: str) -> str:
        if not self.redactor.secrets:
            return delta
        text = self.redactor.mask_secrets(self.held + delta)
        keep = self.redactor.held_back(text)
        self.held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        held, self.held = self.held, ""
        return self.redactor.mask_secrets(held)


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret the settings hold: the providers' and endpoints' keys, credentials in base URLs."""
    from llmtool.providers.registry import configured_base_urls, configured_keys

    secrets = configured_keys(settings)
    urls = configured_base_urls(settings)
    for endpoint in settings.endpoints.values():
        urls.append(endpoint.base_url)
        if endpoint.api_key is not None:
            secrets.append(endpoint.api_key.get_secret_value())
        if endpoint.api_key_env:
            secrets.append(os.environ.get(endpoint.api_key_env, ""))
    for url in urls:
        secrets.extend(url_secrets(url))
    return secrets


def url_secrets(url: str | None) -> list[str]:
    """The parts of a URL that are credentials: the password (and user:password), query values."""
    if not url:
        return []
    parts = urlsplit(url)
    found: list[str] = []
    if parts.password:
        found += [parts.password, f"{parts.username}:{parts.password}"]
    elif parts.username:
        found.append(parts.username)  # a bare token in the user part
    found += [value for _, value in parse_qsl(parts.query)]
    return found
