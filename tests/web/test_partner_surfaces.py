"""A partner is offered only what their role allows: models and templates through /api and /lite,
and the tool's model pickers; what is not offered is refused when asked for anyway."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from llmtool.settings import load_settings
from llmtool.web.app import create_app
from llmtool.web.serve import BackgroundServer
from tests.accounts.support import users_file
from tests.helpers import log_in

PEOPLE = {"pat": "pat's long password", "mia": "mia's long password"}
TEMPLATE = "---\nmodel: demo:echo\nvariables:\n  city: {}\n---\nPlan a trip to {{ city }}\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    folder = tmp_path_factory.mktemp("partners")
    prompts = folder / "prompts"
    prompts.mkdir()
    (prompts / "trip.md").write_text(TEMPLATE)
    (prompts / "secret-plan.md").write_text(TEMPLATE)
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'runs.db'}", default_model="demo:assistant",
        prompts_dir=str(prompts), ui={"users_file": str(users_file(folder, PEOPLE, {"pat": "partner"}))},
        roles={"partner": {"models": ["demo:echo"], "templates": ["trip*"]}},
    )
    app = create_app(settings)
    with BackgroundServer(app) as server:
        server.context = app.state.context  # type: ignore[attr-defined]  # for the pickers' test
        yield server


def test_the_api_offers_a_partner_only_their_models_and_templates(served: BackgroundServer) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as http:
        pat, mia = ("pat", PEOPLE["pat"]), ("mia", PEOPLE["mia"])
        assert [m["id"] for m in http.get("/api/models", auth=pat).json()["models"]] == ["demo:echo"]
        assert len(http.get("/api/models", auth=mia).json()["models"]) > 1
        assert [t["name"] for t in http.get("/api/templates", auth=pat).json()["templates"]] == ["trip"]
        assert {t["name"] for t in http.get("/api/templates", auth=mia).json()["templates"]} == {"trip", "secret-plan"}
        refused = http.post("/api/runs", json={"model": "demo:assistant", "prompt": "hi"}, auth=pat)
        assert refused.status_code == 403 and "may not use demo:assistant" in refused.json()["detail"]
        hidden = http.post("/api/runs", json={"template": "secret-plan", "variables": {"city": "Oslo"}}, auth=pat)
        assert hidden.status_code == 403, hidden.text


def test_the_lite_form_offers_a_partner_only_their_models_and_templates(served: BackgroundServer) -> None:
    cookie = log_in(served.url, "pat", PEOPLE["pat"], next="/lite")
    with httpx.Client(base_url=served.url, timeout=10, cookies={"llmtool_session": cookie}) as browser:
        form = browser.get("/lite")
        assert form.status_code == 200
        offered = set(re.findall(r'<option value="([^"]*)"', form.text))
        assert "demo:echo" in offered and "demo:assistant" not in offered
        assert "trip" in offered and "secret-plan" not in offered


def test_the_tools_pickers_offer_a_partner_only_their_models(served: BackgroundServer) -> None:
    from types import SimpleNamespace

    from llmtool.ui.model_pickers import ModelPickers
    from tests.ui.ui_support import on_server_loop

    context = served.context  # type: ignore[attr-defined]
    pickers = ModelPickers(context)
    pickers.add(SimpleNamespace())  # type: ignore[arg-type]  # only its update is looked at
    for user, expected in (("pat", ["demo:echo"]), ("mia", None)):
        (update,) = on_server_loop(context, pickers.refresh(SimpleNamespace(username=user)))  # type: ignore[arg-type]
        assert update["choices"] == expected if expected else len(update["choices"]) > 1
