"""The registry rescans on every access: edits, additions and removals are seen at once, and one
broken file never hides the others."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmtool.templates import TemplateError, TemplateRegistry, UnknownTemplateError
from tests.helpers import write_template

GREETING = "---\nvariables:\n  who: {default: world}\n---\nHello {{ who }}\n"


def test_edit_is_seen_by_the_next_get(tmp_path: Path) -> None:
    path = write_template(tmp_path, "greet", GREETING)
    registry = TemplateRegistry(tmp_path)
    first = registry.get("greet")
    assert first.render({}).prompt == "Hello world"
    path.write_text(GREETING.replace("Hello", "Goodbye"))
    second = registry.get("greet")
    assert second.render({}).prompt == "Goodbye world"
    assert second.content_hash != first.content_hash


def test_same_size_edit_with_the_same_mtime_is_still_seen(tmp_path: Path) -> None:
    path = write_template(tmp_path, "greet", GREETING)
    registry = TemplateRegistry(tmp_path)
    stat = path.stat()
    assert registry.get("greet").render({}).prompt == "Hello world"
    path.write_text(GREETING.replace("Hello", "Howdy"))  # same length
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old timestamp
    assert registry.get("greet").render({}).prompt == "Howdy world"


def test_unchanged_file_is_not_reparsed(tmp_path: Path) -> None:
    path = write_template(tmp_path, "greet", GREETING)
    old = path.stat().st_mtime_ns - 10 * 10**9  # outside the "recently modified" window
    os.utime(path, ns=(old, old))
    registry = TemplateRegistry(tmp_path)
    assert registry.get("greet") is registry.get("greet")


def test_added_and_removed_files(tmp_path: Path) -> None:
    registry = TemplateRegistry(tmp_path)
    assert registry.list() == []
    with pytest.raises(UnknownTemplateError, match="available: none yet"):
        registry.get("greet")
    path = write_template(tmp_path, "greet", GREETING)
    assert [t.name for t in registry.list()] == ["greet"]
    path.unlink()
    with pytest.raises(UnknownTemplateError, match="unknown template 'greet'"):
        registry.get("greet")


def test_broken_file_is_reported_and_others_keep_working(tmp_path: Path) -> None:
    write_template(tmp_path, "good", GREETING)
    broken = write_template(tmp_path, "broken", "---\nvariables:\n  x: {type: choice}\n---\n{{ x }}\n")
    registry = TemplateRegistry(tmp_path)
    assert [t.name for t in registry.list()] == ["good"]
    assert registry.get("good").render({}).prompt == "Hello world"
    [problem] = registry.problems()
    assert problem.path == broken and problem.line == 3
    with pytest.raises(TemplateError, match="needs a non-empty 'choices'"):
        registry.get("broken")
    broken.write_text("---\nvariables:\n  x: {type: choice, choices: [a]}\n---\n{{ x }} fixed\n")
    assert registry.problems() == []
    assert registry.get("broken").render({"x": "a"}).prompt == "a fixed"


def test_good_file_broken_by_an_edit(tmp_path: Path) -> None:
    path = write_template(tmp_path, "greet", GREETING)
    registry = TemplateRegistry(tmp_path)
    registry.get("greet")
    path.write_text(GREETING + "{{ nobody }}\n")
    with pytest.raises(TemplateError, match="'nobody' is used but not declared"):
        registry.get("greet")


def test_only_markdown_templates_are_listed(tmp_path: Path) -> None:
    write_template(tmp_path, "greet", GREETING)
    (tmp_path / "README.md").write_text("# Not a template {{ oops }}")
    (tmp_path / ".hidden.md").write_text("Hi")
    (tmp_path / "notes.txt").write_text("Hi")
    (tmp_path / "datasets").mkdir()
    assert TemplateRegistry(tmp_path).names() == ["greet"]


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    registry = TemplateRegistry(tmp_path / "nope")
    assert registry.list() == []
    with pytest.raises(UnknownTemplateError, match=r"templates directory .*nope does not exist"):
        registry.get("greet")


def test_resolve_accepts_a_path(tmp_path: Path) -> None:
    elsewhere = tmp_path / "drafts"
    elsewhere.mkdir()
    path = write_template(elsewhere, "draft", "Draft prompt")
    registry = TemplateRegistry(tmp_path / "prompts")
    assert registry.resolve(str(path)).name == "draft"
    with pytest.raises(UnknownTemplateError, match="no template file"):
        registry.resolve(str(elsewhere / "missing.md"))


ALIAS_BOMB = (
    "---\n"
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
    "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
    "description: *h\n"
    "---\nHi\n"
)


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("---\ndescription: &a [*a]\n---\nHi\n", 2, "YAML anchors (&name) are not allowed in templates"),
        ("---\nmodel: demo:assistant\ndescription: *nowhere\n---\nHi\n", 3, "YAML aliases (*name) are not allowed in templates"),
        (ALIAS_BOMB, 2, "YAML anchors (&name) are not allowed"),
        ("---\nvariables:\n  n: {type: number, default: " + "9" * 400 + "}\n---\n{{ n }}\n", 3, "must be a number"),
    ],
    ids=["self-reference", "alias", "billion laughs", "400-digit number"],
)
def test_hostile_file_is_one_problem_and_others_keep_working(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    write_template(tmp_path, "good", GREETING)
    bad = write_template(tmp_path, "bad", text)
    registry = TemplateRegistry(tmp_path)
    assert registry.get("good").render({}).prompt == "Hello world"
    [problem] = registry.problems()
    assert (problem.path, problem.line) == (bad, line)
    assert message in problem.message


def test_unexpected_exception_while_loading_is_a_problem_of_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmtool.templates.loader as loader

    def explode(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    write_template(tmp_path, "good", GREETING)
    bad = write_template(tmp_path, "bad", "---\ndescription: deep\n---\nHi\n")
    real = loader._parse_front_matter
    monkeypatch.setattr(
        loader, "_parse_front_matter", lambda path, front: explode() if "deep" in front else real(path, front)
    )
    registry = TemplateRegistry(tmp_path)
    assert registry.get("good").render({}).prompt == "Hello world"
    [problem] = registry.problems()
    assert problem.path == bad
    assert "RecursionError: maximum recursion depth exceeded" in problem.message
