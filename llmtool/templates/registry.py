"""The templates directory, always current: every access rescans it, so an edited, added or removed
file is used by the next run without a restart, and a broken file never hides the others.

    registry = TemplateRegistry(settings.prompts_dir)
    registry.get("summarise")        # Template, or TemplateError (broken / unknown)
    registry.list()                  # the templates that load, by name
    registry.problems()              # a TemplateError per broken file

A file that is a symbolic link leading outside the directory is refused (its entry holds the
TemplateError saying so), never read. A rescan is one `os.scandir` plus a `stat` per file; a file
is re-read only when its size or modification time changed, or when it was modified in the last
two seconds (an edit within the file system's timestamp granularity keeps the same mtime: the same
trick git uses).
Thread-safe: the UI may call it from several worker threads.
"""

from __future__ import annotations

import builtins
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from llmtool.templates.errors import TemplateError, UnknownTemplateError
from llmtool.templates.loader import SUFFIX, content_hash, in_folder, leads_outside, link_refused, load_template
from llmtool.templates.template import Template

_RACY_SECONDS = 2.0
_IGNORED = {"readme.md"}


@dataclass(frozen=True)
class Entry:
    """One template file: its template, or the error that stops it loading."""

    name: str
    path: Path
    template: Template | None
    error: TemplateError | None
    stamp: tuple[int, int]  # (mtime_ns, size)
    digest: str


class TemplateRegistry:
    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Template:
        """The template called `name` as the file is now; a TemplateError when it is broken or unknown."""
        entries = self._scan()
        entry = entries.get(name)
        if entry is None:
            raise self._unknown(name, entries)
        if entry.error is not None:
            raise entry.error
        assert entry.template is not None
        return entry.template

    def list(self) -> list[Template]:
        """Every template that loads, sorted by name."""
        return [e.template for e in self.entries() if e.template is not None]

    def problems(self) -> builtins.list[TemplateError]:
        """One error per file that does not load."""
        return [e.error for e in self.entries() if e.error is not None]

    def entries(self) -> builtins.list[Entry]:
        """Every template file, loaded or not, sorted by name."""
        return sorted(self._scan().values(), key=lambda e: e.name)

    def names(self) -> builtins.list[str]:
        return [e.name for e in self.entries()]

    def resolve(self, name_or_path: str) -> Template:
        """A template by name, or straight from a file path (`prompts/summarise.md`, `./draft.md`)."""
        candidate = Path(name_or_path)
        if name_or_path.endswith(SUFFIX) or os.sep in name_or_path or "/" in name_or_path:
            if candidate.is_file():
                if in_folder(candidate, self.directory) and leads_outside(candidate, self.directory):
                    raise TemplateError(candidate, None, link_refused(self.directory, "template"))
                return load_template(candidate)
            if name_or_path.endswith(SUFFIX) and (self.directory / candidate.name).is_file():
                return self.get(candidate.name.removesuffix(SUFFIX))
            raise UnknownTemplateError(None, None, f"no template file {name_or_path}")
        return self.get(name_or_path)

    # -- scanning ------------------------------------------------------------------------------
    def _scan(self) -> dict[str, Entry]:
        # Files are read and parsed outside the lock (a slow file must not block other threads);
        # the lock only guards the swap. Two threads scanning at once parse a changed file twice,
        # harmlessly: both results are equal.
        now = time.time_ns()
        with self._lock:
            previous = self._entries
        fresh: dict[str, Entry] = {}
        for dirent in self._files():
            try:
                stat = dirent.stat()
            except OSError:  # removed between listing and stat
                continue
            name = dirent.name.removesuffix(SUFFIX)
            path = Path(self.directory, dirent.name)
            if dirent.is_symlink() and leads_outside(path, self.directory):
                refused = TemplateError(path, None, link_refused(self.directory, "template"))
                fresh[name] = Entry(name, path, None, refused, (stat.st_mtime_ns, stat.st_size), "")
                continue
            fresh[name] = self._load(name, path, stat, now, previous.get(name))
        with self._lock:
            self._entries = fresh
        return dict(fresh)

    def _files(self) -> builtins.list[os.DirEntry[str]]:
        try:
            with os.scandir(self.directory) as listing:
                return [
                    d for d in listing
                    if d.name.endswith(SUFFIX)
                    and not d.name.startswith(".")
                    and d.name.lower() not in _IGNORED
                    and d.is_file()
                ]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _load(self, name: str, path: Path, stat: os.stat_result, now: int, old: Entry | None) -> Entry:
        stamp = (stat.st_mtime_ns, stat.st_size)
        recently_modified = now - stat.st_mtime_ns < _RACY_SECONDS * 1e9
        if old is not None and old.stamp == stamp and not recently_modified:
            return old
        try:
            data = path.read_bytes()
        except OSError as exc:
            error = TemplateError(path, None, f"cannot read the file: {exc.strerror or exc}")
            return Entry(name, path, None, error, stamp, "")
        digest = content_hash(data)
        if old is not None and old.digest == digest:
            return Entry(name, path, old.template, old.error, stamp, digest)
        try:
            return Entry(name, path, load_template(path, data), None, stamp, digest)
        except TemplateError as error:
            return Entry(name, path, None, error, stamp, digest)
        except Exception as exc:  # one bad file must never break the commands using the others
            broken = TemplateError(path, None, f"the file cannot be loaded: {type(exc).__name__}: {exc}"[:500])
            return Entry(name, path, None, broken, stamp, digest)

    def _unknown(self, name: str, entries: dict[str, Entry]) -> UnknownTemplateError:
        if not self.directory.is_dir():
            return UnknownTemplateError(
                None, None,
                f"unknown template {name!r}: the templates directory {self.directory} does not exist "
                "(set prompts_dir in the config file)",
            )
        known = ", ".join(sorted(entries)) or "none yet"
        return UnknownTemplateError(
            None, None, f"unknown template {name!r} in {self.directory}/ (available: {known})"
        )
