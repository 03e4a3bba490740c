"""Files the app writes for its users stay theirs and ours: owner-only, and deleted after a while.

    cache = keep_files_private()          # once per process, before Gradio's blocks are built
    sweep(cache, older_than=3600)         # what the app's sweeper does every few minutes

Three things hold it:

- **umask 077** from the moment an app is composed (`AppContext`): every file and folder the
  server process creates — our exports, the run store's SQLite file, Gradio's cached copies of
  what a handler returns and the folders it makes for uploads — is 0600 / 0700. Gradio copies a
  returned file with `shutil.copy2`, which keeps the source's mode, and makes its folders with
  `mkdir()`: without this, an export was a 0644 file in a 0755 folder of /tmp/gradio.
- **A private Gradio cache.** Gradio keeps uploads and copies of returned files in
  `$GRADIO_TEMP_DIR` (default `/tmp/gradio`, shared by every account and every Gradio app of the
  machine). `keep_files_private` points it at a folder made with `mkdtemp` (0700) — inside the
  deployment's `GRADIO_TEMP_DIR` when one is set — and removes it when the process ends. Gradio
  reads the variable when blocks and the app are built, so this runs before them.
- **A sweep** (`sweep`, run by `AppContext` every few minutes): files not modified for
  `ui.files_keep_minutes` (default 60) are deleted, with the folders they leave empty; anything
  group or others could read is made owner-only. Gradio's own `delete_cache` only removes the
  files it tracks, by age, and leaves their folders; ours covers the whole folder.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

GRADIO_CACHE_VARIABLE = "GRADIO_TEMP_DIR"
OWNER_ONLY_UMASK = 0o077
FILE_MODE, FOLDER_MODE = 0o600, 0o700

_lock = threading.Lock()
_cache: Path | None = None


def keep_files_private() -> Path:
    """Make what this process writes owner-only (umask 077) and give Gradio a private cache folder
    (made once per process, removed at exit); returns that folder. Idempotent."""
    global _cache
    os.umask(OWNER_ONLY_UMASK)
    with _lock:
        current = os.environ.get(GRADIO_CACHE_VARIABLE)
        if _cache is not None and current == str(_cache) and _cache.is_dir():
            return _cache
        parent = Path(current) if current else None
        if parent is not None:
            parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        _cache = Path(tempfile.mkdtemp(prefix="llmtool-gradio-", dir=parent))
        os.environ[GRADIO_CACHE_VARIABLE] = str(_cache)
        atexit.register(shutil.rmtree, _cache, ignore_errors=True)
        return _cache


def gradio_cache() -> Path | None:
    """The private Gradio cache of this process, once `keep_files_private` made it."""
    return _cache


def sweep(folder: Path, older_than: float, *, now: float | None = None) -> int:
    """Delete the files under `folder` not modified for `older_than` seconds, and the folders that
    leaves empty (or that are empty and as old); make what stays owner-only. `folder` itself stays.
    Never follows a symbolic link (one is deleted by its own age). Returns how many files went."""
    cutoff = (time.time() if now is None else now) - older_than
    removed = 0
    for root, folders, files in os.walk(folder, topdown=False):  # the contents before their folder
        emptied = False
        for name in files:
            gone = _sweep_entry(os.path.join(root, name), cutoff, FILE_MODE)
            removed += gone
            emptied = emptied or gone
        for name in folders:
            path = os.path.join(root, name)
            if os.path.islink(path):  # a link to a folder: os.walk did not enter it
                gone = _sweep_entry(path, cutoff, FILE_MODE)
                removed += gone
                emptied = emptied or gone
            elif not os.path.lexists(path):  # removed when its own turn came
                emptied = True
        if root != str(folder):
            _sweep_folder(root, cutoff, emptied)
    _tighten(str(folder), FOLDER_MODE)
    return removed


def _sweep_entry(path: str, cutoff: float, mode: int) -> bool:
    try:
        info = os.lstat(path)
        if info.st_mtime < cutoff:
            os.unlink(path)
            return True
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
            os.chmod(path, mode)
    except FileNotFoundError:  # Gradio (or a download) removed it meanwhile
        pass
    except OSError as error:
        log.warning("could not sweep %s: %s", path, error.strerror or error)
    return False


def _sweep_folder(path: str, cutoff: float, emptied: bool) -> None:
    try:
        if emptied or os.lstat(path).st_mtime < cutoff:
            os.rmdir(path)  # only when empty: a folder still holding a new file stays
            return
    except FileNotFoundError:
        return
    except OSError:  # not empty
        pass
    _tighten(path, FOLDER_MODE)


def _tighten(path: str, mode: int) -> None:
    try:
        if os.lstat(path).st_mode & 0o077:
            os.chmod(path, mode)
    except OSError:
        pass
