"""Helpers shared by test folders (fixtures live in conftest.py files)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED_PROMPTS = REPO / "prompts"


def write_template(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    return path


def log_in(base_url: str, user: str, password: str, next: str = "/") -> str:
    """Log in through the `/login` form, as a browser does (the CSRF cookie from the form, then the
    POST); returns the `llmtool_session` cookie's value."""
    import re

    import httpx

    with httpx.Client(base_url=base_url, timeout=10) as browser:
        form = browser.get("/login", params={"next": next})
        assert form.status_code == 200, form.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        answer = browser.post("/login", data={"csrf_token": token.group(1), "username": user, "password": password,
                                              "next": next})
        assert answer.status_code == 303, f"the login of {user!r} failed: {answer.status_code}"
        return str(answer.cookies["llmtool_session"])


def session_client(base_url: str, user: str, password: str, **kwargs: object):  # type: ignore[no-untyped-def]
    """A gradio_client Client logged in through `/login` (its session cookie on every request)."""
    from gradio_client import Client

    cookie = log_in(base_url, user, password)
    return Client(base_url, httpx_kwargs={"cookies": {"llmtool_session": cookie}}, verbose=False,
                  download_files=False, **kwargs)
