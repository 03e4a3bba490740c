"""Helpers shared by test folders (fixtures live in conftest.py files)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED_PROMPTS = REPO / "prompts"


def write_template(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    return path
