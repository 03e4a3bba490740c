"""The one error a template problem becomes: where it is (file and line) and what is wrong.

    TemplateError                a template file cannot be loaded, rendered or given these values
    └── UnknownTemplateError     no template of that name in the templates directory

Both are `InvalidRequestError`s (usage errors: the user fixes the file or the command, nothing is
retried), so every caller that already reports a `UsageError` reports these too.
"""

from __future__ import annotations

from pathlib import Path

from llmtool.errors import InvalidRequestError


def location(path: Path | str | None, line: int | None = None) -> str:
    """'prompts/summarise.md:12', 'prompts/summarise.md' or '' — the prefix of a message."""
    if path is None:
        return ""
    return f"{path}:{line}" if line else str(path)


class TemplateError(InvalidRequestError):
    """A template file is broken, or the values given for it are wrong.

    `message` reads 'prompts/x.md:12: what is wrong'; `path`, `line` and `detail` keep the parts.
    """

    def __init__(self, path: Path | str | None, line: int | None, detail: str) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        self.detail = detail
        where = location(path, line)
        super().__init__(f"{where}: {detail}" if where else detail)


class UnknownTemplateError(TemplateError):
    """The name matches no template file."""
