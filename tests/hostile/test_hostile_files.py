"""Files stay ours: what the app writes for users (uploads, exports, Gradio's copies of them) is
owner-only and swept after `ui.files_keep_minutes`; templates and datasets that are symbolic links
leading outside the prompts folder are refused, never read.

Real files throughout: the modes are read with `stat` on disk, through a running app whose
exports are downloaded over HTTP as a browser does.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file

from llmtool.cli import main
from llmtool.evaluation.dataset import DatasetError, load_dataset
from llmtool.settings import load_settings
from llmtool.templates import TemplateError, TemplateRegistry
from llmtool.web import files
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer

SECRET = "TOP-SECRET-CONTENT-of-a-file-outside-prompts"
ECHO = "---\nmodel: demo:echo\nvariables:\n  text: {}\n---\n{{ text }}\n"
CASES = "id,text,expect_contains\nfirst,hello there,hello\nsecond,general kenobi,kenobi\n"
REFUSED = "the file is a symbolic link leading outside prompts/: refused"
E_PROGRESS, E_CSV, E_JSONL = 0, 3, 4
HISTORY_EXPORT = 12  # the History tab's export file, the last output of /history_export


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def modes_under(folder: Path) -> dict[str, int]:
    """Every folder and file under `folder` (itself included) → its permission bits."""
    found = {str(folder): mode(folder)}
    for root, folders, names in os.walk(folder):
        for name in [*folders, *names]:
            found[os.path.join(root, name)] = mode(os.path.join(root, name))
    return found


def assert_owner_only(folder: Path) -> dict[str, int]:
    found = modes_under(folder)
    for path, bits in found.items():
        expected = files.FOLDER_MODE if os.path.isdir(path) else files.FILE_MODE
        assert bits == expected, f"{path} is {bits:o}, not {expected:o}"
    return found


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    """A prompts folder with a template, a dataset, and links: one inside (allowed), two out."""
    folder = tmp_path / "prompts"
    (folder / "datasets").mkdir(parents=True)
    (folder / "echo.md").write_text(ECHO, encoding="utf-8")
    (folder / "datasets" / "cases.csv").write_text(CASES, encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stolen.md").write_text(f"---\nmodel: demo:echo\n---\n{SECRET}\n", encoding="utf-8")
    (outside / "leak.csv").write_text(f"id,text\n{SECRET},{SECRET}\n", encoding="utf-8")
    (folder / "stolen.md").symlink_to(outside / "stolen.md")
    (folder / "datasets" / "leak.csv").symlink_to(outside / "leak.csv")
    (folder / "alias.md").symlink_to("echo.md")  # a link inside prompts/ is fine
    (folder / "datasets" / "again.csv").symlink_to("../datasets/cases.csv")
    return folder


def app_settings(tmp_path: Path, prompts: Path, **ui: Any) -> Any:
    return load_settings(
        database_url=f"sqlite:///{tmp_path / 'runs.db'}", prompts_dir=prompts, default_model="demo:echo",
        demo={"first_token_delay": 0.0, "tokens_per_second": 100_000}, ui=ui,
    )


@pytest.fixture
def serve(tmp_path: Path, prompts: Path) -> Iterator[Callable[..., tuple[AppContext, str]]]:
    servers: list[BackgroundServer] = []

    def start(**ui: Any) -> tuple[AppContext, str]:
        context = AppContext(app_settings(tmp_path, prompts, **ui))
        servers.append(BackgroundServer(create_app(context=context)).start())
        return context, servers[-1].url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def connect() -> Iterator[Callable[[str], Client]]:
    clients: list[Client] = []

    def make(url: str) -> Client:
        clients.append(Client(url, verbose=False, download_files=False))
        return clients[-1]

    yield make
    for client in clients:
        threading.Thread(target=client.close, daemon=True).start()


def file_of(output: Any) -> dict[str, Any]:
    """The file data (path on the server, url) of a File/DownloadButton output, plain or an update."""
    if isinstance(output, dict) and output.get("__type__") == "update":
        output = output.get("value")
    assert isinstance(output, dict) and output.get("path"), f"no file in {output!r}"
    return output


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
    return value


# -- owner-only ---------------------------------------------------------------------------------
def test_the_process_writes_owner_only_and_gradio_caches_in_a_private_folder(tmp_path) -> None:
    import gradio.utils

    folder = files.keep_files_private()
    assert files.keep_files_private() == folder  # once per process
    assert mode(folder) == 0o700 and folder.name.startswith("llmtool-gradio-")
    assert gradio.utils.get_upload_folder() == str(folder)
    current = os.umask(0o077)
    os.umask(current)
    assert current == 0o077
    written = tmp_path / "any.txt"
    written.write_text("x")
    (tmp_path / "sub").mkdir()
    assert mode(written) == 0o600 and mode(tmp_path / "sub") == 0o700


def test_exports_and_uploads_through_the_running_app_are_owner_only(serve, connect, tmp_path) -> None:
    """An evaluation's exports, the History export and an uploaded dataset, downloaded as a browser
    does: every file of Gradio's cache and of our export folder is 0600, every folder 0700."""
    context, url = serve()
    client = connect(url)
    result = client.predict(template="echo", dataset="cases.csv", models=["demo:echo"], api_name="/evaluate")
    assert result[E_PROGRESS].startswith("Done · 2/2 · 2 passed")
    exported = [file_of(result[E_CSV]), file_of(result[E_JSONL])]
    history = file_of(client.predict("csv", api_name="/history_export")[HISTORY_EXPORT])
    upload = tmp_path / "mine.csv"
    upload.write_text(CASES, encoding="utf-8")
    os.chmod(upload, 0o644)  # a user's file, readable by all on their disk
    uploaded = client.predict(template="echo", upload=handle_file(str(upload)), api_name="/evaluate")
    assert uploaded[E_PROGRESS].startswith("Done · 2/2"), uploaded[E_PROGRESS]

    with httpx.Client(timeout=10) as http:
        for data in [*exported, history]:
            response = http.get(data["url"])
            assert response.status_code == 200 and b"hello" in response.content  # the real download
            copy = Path(data["path"])
            assert copy.is_relative_to(context.gradio_cache)  # Gradio's copy, in the private cache
            assert mode(copy) == 0o600 and mode(copy.parent) == 0o700
    cache = assert_owner_only(context.gradio_cache)
    ours = assert_owner_only(context.export_dir())
    assert len([p for p in cache if p.endswith(".csv")]) >= 3  # two exports and the upload
    assert len([p for p in ours if not os.path.isdir(p)]) == 5  # 2 + 2 evaluation exports, 1 history
    assert mode(context.gradio_cache) == 0o700 and mode(context.export_dir()) == 0o700


def test_an_old_export_is_swept_while_the_app_runs(serve, connect) -> None:
    """With files kept 3 s, the sweeper (every second here) deletes the export, Gradio's copy and
    the folder that held it; the app keeps serving."""
    context, url = serve(files_keep_minutes=0.05)
    client = connect(url)
    result = client.predict(template="echo", dataset="cases.csv", models=["demo:echo"], api_name="/evaluate")
    copy = Path(file_of(result[E_CSV])["path"])
    originals = list(context.export_dir().iterdir())
    assert copy.exists() and originals
    wait_for(lambda: not copy.exists() and not any(p.exists() for p in originals), timeout=15,
             what="the sweeper to delete the old export")
    assert not copy.parent.exists()  # its folder too
    again = client.predict(template="echo", dataset="cases.csv", models=["demo:echo"], api_name="/evaluate")
    assert Path(file_of(again[E_CSV])["path"]).exists()  # a new export is offered again


def test_the_sweep_keeps_new_files_and_deletes_old_ones_by_their_age(serve, connect) -> None:
    context, url = serve()  # the default: files kept an hour
    assert context.files_keep_seconds == 3600
    result = connect(url).predict("jsonl", api_name="/history_export")
    copy = Path(file_of(result[HISTORY_EXPORT])["path"])
    assert context.sweep_files() == 0 and copy.exists()  # just written
    assert context.sweep_files(now=time.time() + 3601) >= 2  # an hour later: the export and its copy
    assert not copy.exists() and list(context.export_dir().iterdir()) == []


def test_sweep_deletes_old_files_and_emptied_folders_and_tightens_what_stays(tmp_path) -> None:
    root = tmp_path / "cache"
    (root / "old").mkdir(parents=True)
    (root / "new").mkdir()
    (root / "empty").mkdir()
    old, new = root / "old" / "a.csv", root / "new" / "b.csv"
    old.write_text("old")
    new.write_text("new")
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours to delete")
    (root / "link").symlink_to(outside)
    for path, bits in ((old, 0o644), (new, 0o644), (root / "old", 0o755), (root / "new", 0o755), (root, 0o755)):
        os.chmod(path, bits)
    hours_ago = time.time() - 7200
    for path in (old, root / "empty"):
        os.utime(path, (hours_ago, hours_ago))
    os.utime(root / "link", (hours_ago, hours_ago), follow_symlinks=False)

    assert files.sweep(root, older_than=3600) == 2  # the old file and the old link
    assert not (root / "old").exists() and not (root / "empty").exists()
    assert outside.read_text() == "not ours to delete"  # a link is never followed
    assert new.read_text() == "new"
    assert (mode(new), mode(root / "new"), mode(root)) == (0o600, 0o700, 0o700)


# -- links out of prompts/ ------------------------------------------------------------------------
def test_a_template_linking_outside_prompts_is_refused_and_never_read(prompts) -> None:
    registry = TemplateRegistry(prompts)
    assert [t.name for t in registry.list()] == ["alias", "echo"]  # a link inside prompts/ loads
    with pytest.raises(TemplateError) as refused:
        registry.get("stolen")
    assert REFUSED in refused.value.message and SECRET not in refused.value.message
    assert [REFUSED in p.message for p in registry.problems()] == [True]
    with pytest.raises(TemplateError, match="symbolic link leading outside prompts/"):
        registry.resolve(str(prompts / "stolen.md"))  # named by its path, as the CLI can


def test_a_dataset_linking_outside_prompts_is_refused_and_never_read(prompts) -> None:
    template = TemplateRegistry(prompts).get("echo")
    with pytest.raises(DatasetError) as refused:
        load_dataset(prompts / "datasets" / "leak.csv", template)
    assert REFUSED in str(refused.value) and SECRET not in str(refused.value)
    assert [case.id for case in load_dataset(prompts / "datasets" / "again.csv", template).cases] == [
        "first", "second"]  # a link inside prompts/ is read


def test_links_outside_prompts_are_refused_through_the_running_app(serve, connect) -> None:
    _, url = serve()
    client = connect(url)
    evaluated = client.predict(template="echo", dataset="leak.csv", models=["demo:echo"], api_name="/evaluate")
    assert REFUSED in evaluated[E_PROGRESS] and SECRET not in str(evaluated)
    ran = client.predict(template="stolen", variables={}, api_name="/run_template")
    assert any(isinstance(part, str) and REFUSED in part for part in ran), ran
    assert SECRET not in str(ran)


def test_the_cli_refuses_them_too(prompts, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LLMTOOL_PROMPTS_DIR", str(prompts))
    monkeypatch.setenv("LLMTOOL_DEMO__FIRST_TOKEN_DELAY", "0")
    assert main(["eval", "echo", str(prompts / "datasets" / "leak.csv"), "--no-progress"]) == 2
    assert main(["prompts", "check"]) != 0
    out, err = capsys.readouterr()
    assert REFUSED in err and f"stolen.md: {REFUSED}" in out + err
    assert SECRET not in out + err
