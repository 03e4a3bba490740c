"""Uploaded files only: a server path or URL sent by an API caller is never read.

Gradio "moves to cache" every input file before a handler sees it, and checks that an input was
really uploaded only once `launch()` ran — never under `mount_gradio_app`, which is how llmtool is
served. `UploadBox` keeps such a path out of the upload folder and `uploaded_file` refuses it.

Kept in its own module because Gradio writes a `.pyi` stub beside any module that subclasses a
component (git-ignored): here the stub covers this one class, not a whole tab.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from llmtool.errors import InvalidRequestError

UPLOAD_REFUSED = "upload the dataset file through the page (or gradio_client's handle_file)"


def in_upload_folder(path: str | Path) -> bool:
    """Whether `path` is a file in Gradio's upload folder, once resolved (no symlink out of it)."""
    try:
        folder = Path(get_upload_folder()).resolve()
        resolved = Path(path).resolve()
        return resolved != folder and resolved.is_relative_to(folder)
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
        return False


def uploaded_file(upload: str) -> Path:
    """The file Gradio received into its upload folder; anything else (a server path or URL an API
    caller sent, a symlink out of the folder) is refused with the same message, whether it exists
    or not."""
    if not in_upload_folder(upload):
        raise InvalidRequestError(UPLOAD_REFUSED)
    return Path(upload).resolve()


class UploadBox(gr.File):
    """A gr.File that never copies a file it was not sent into the upload folder: a raw API call
    with `{"path": "/any/server/file.csv"}` (or a URL) stays as it is, and `uploaded_file` refuses it."""

    is_template = True  # the page shows Gradio's own File component

    async def async_move_resource_to_block_cache(self, url_or_file_path: str | Path | None) -> str | None:
        if url_or_file_path is None or in_upload_folder(url_or_file_path):
            return await super().async_move_resource_to_block_cache(url_or_file_path)
        return str(url_or_file_path)  # not copied; refused by the handler

    def move_resource_to_block_cache(self, url_or_file_path: str | Path | None) -> str | None:
        if url_or_file_path is None or in_upload_folder(url_or_file_path):
            return super().move_resource_to_block_cache(url_or_file_path)
        return str(url_or_file_path)
