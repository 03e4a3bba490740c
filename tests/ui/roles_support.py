"""The app with logins of three roles, for the tests of what the page offers each role.

pat is a partner (templates `trip*` only, no prompts of his own, no uploads, the default budgets), mia
a member, root an admin. demo:echo is priced, so every run costs something and the budgets and the
usage view have figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmtool.settings import load_settings
from llmtool.web.app import create_app
from llmtool.web.serve import BackgroundServer
from tests.accounts.support import users_file

PEOPLE = {"pat": "pat's long password", "mia": "mia's long password", "root": "root's long password"}
ROLES = {"pat": "partner", "root": "admin"}
TEMPLATE = "---\nmodel: demo:echo\nvariables:\n  city: {}\n---\nPlan a trip to {{ city }}\n"
ALLOWED = ["trip", "trip-long"]
HIDDEN = "secret-plan"


def served(folder: Path, **overrides: Any) -> BackgroundServer:
    """The app on 127.0.0.1 (not started): trip, trip-long and secret-plan in its prompts folder."""
    prompts = folder / "prompts"
    prompts.mkdir()
    for name in (*ALLOWED, HIDDEN):
        (prompts / f"{name}.md").write_text(TEMPLATE)
    options: dict[str, Any] = dict(
        database_url=f"sqlite+aiosqlite:///{folder / 'runs.db'}", default_model="demo:echo",
        prompts_dir=str(prompts), ui={"users_file": str(users_file(folder, PEOPLE, ROLES))},
        roles={"partner": {"models": ["demo:*"], "templates": ["trip*"], "free_prompts": False,
                           "uploads": False}},
        prices={"demo:echo": {"input": 10_000, "output": 10_000}},  # a cent a token: runs cost cents
        demo={"first_token_delay": 0.0, "tokens_per_second": 400},
    )
    options.update(overrides)
    app = create_app(load_settings(**options))
    return BackgroundServer(app)
