"""What the tool's endpoints give each role, through the real app and gradio_client: a partner's
previews and runs of templates it may not use are refused, its own prompts too; only an admin gets the
usage of every user (a hidden tab is no permission: its endpoint refuses everyone else)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gradio_client.exceptions import AppError, ValidationError

from llmtool.ui.compare import TEMPLATE_MODEL
from llmtool.web.serve import BackgroundServer
from tests.helpers import session_client
from tests.ui.roles_support import HIDDEN, PEOPLE, served

STATUS = 1  # /chat and /run_template, as a client sees them: chat, status, validation, prompt, Stop


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    with served(tmp_path_factory.mktemp("roles")) as running:
        yield running


@pytest.fixture
def login(server: BackgroundServer) -> Iterator:
    clients: list = []

    def make(user: str):  # type: ignore[no-untyped-def]
        clients.append(session_client(server.url, user, PEOPLE[user]))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def last_status(job) -> str:  # type: ignore[no-untyped-def]
    return next(o[STATUS] for o in reversed(job.outputs()) if isinstance(o[STATUS], str))


def test_a_partner_gets_neither_the_prompt_nor_a_run_of_a_template_it_may_not_use(login) -> None:
    pat = login("pat")
    refused = pat.predict(HIDDEN, {"city": "Oslo"}, api_name="/preview")
    assert "may not use the template 'secret-plan'" in refused and "Plan a trip" not in refused
    assert "Plan a trip to Oslo" in pat.predict("trip", {"city": "Oslo"}, api_name="/preview")

    for variables in ({"city": "Oslo"}, None):  # refused before its file is read: nothing of it shows
        job = pat.submit(HIDDEN, variables, api_name="/run_template")
        job.result(timeout=15)
        assert last_status(job) == "⚠ Your role (partner) may not use the template 'secret-plan'"
    columns = pat.predict(2, HIDDEN, TEMPLATE_MODEL, "trip", TEMPLATE_MODEL, None, None, None, None,
                          {"city": "Oslo"}, api_name="/compare")
    assert columns[0] == "⚠ Your role (partner) may not use the template 'secret-plan'"
    assert columns[3].startswith("Done")  # the other column, a template it may use
    job = pat.submit("my own words", api_name="/chat")
    job.result(timeout=15)
    assert "may only run templates, not prompts of its own" in last_status(job)
    job = pat.submit("trip", {"city": "Oslo"}, api_name="/run_template")
    job.result(timeout=15)
    assert last_status(job).startswith("Done")


def test_only_an_admin_gets_the_usage_of_every_user(login) -> None:
    pat, mia, root = login("pat"), login("mia"), login("root")
    pat.predict("trip", {"city": "Bergen"}, api_name="/run_template")
    mia.predict("hello from mia", api_name="/chat")
    for someone in (mia, pat):
        with pytest.raises(AppError, match="Only an admin may see everyone's usage"):
            someone.predict(7, "(everyone)", api_name="/usage")

    summary, table, users = root.predict(7, "(everyone)", api_name="/usage")
    rows = {row[1]: row for row in table["data"]}
    assert {"pat", "mia"} <= set(rows) and "root" not in rows
    assert rows["mia"][2] >= 1 and rows["mia"][3].startswith("$0.0")  # a cent a token
    assert "**mia**" in summary and "**pat**" in summary
    assert [value for value, _ in users["choices"]] == ["(everyone)", "mia", "pat"]
    _, only_mia, _ = root.predict(7, "mia", api_name="/usage")
    assert {row[1] for row in only_mia["data"]} == {"mia"}
    with pytest.raises(ValidationError, match="days: must be a number from 1 to 366"):
        root.predict(0, "(everyone)", api_name="/usage")


def test_a_partner_cannot_evaluate_a_template_it_may_not_use_nor_upload_a_dataset(login, tmp_path) -> None:
    from gradio_client import handle_file

    pat = login("pat")
    hidden = pat.predict(template=HIDDEN, dataset="(none)", api_name="/evaluate")
    assert "may not use the template 'secret-plan'" in hidden[0]
    data = tmp_path / "cases.csv"
    data.write_text("city\nOslo\n")
    uploaded = pat.predict(template="trip", upload=handle_file(str(data)), api_name="/evaluate")
    assert "may not upload datasets" in uploaded[0]
