"""What one app shares: settings, the one LLMService, the template registry, redaction, streams
in flight, a private directory for exported files.

    context = AppContext(settings)      # cheap: no service, no provider client yet
    await context.start()               # the lifespan: the service, on the server's loop
    ...
    await context.aclose()

The service is created on the server's event loop (at startup by `start`, or on first use under
`gradio app.py`, where Gradio's own server runs the app and no lifespan of ours does): runs belong
to the loop that started them, and Gradio runs `async def` handlers on the server's loop. Nothing
here holds a secret that could reach the browser; the settings stay on the server. It knows no
Gradio: routers and the Gradio tabs receive it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path

from fastapi import Request

from llmtool.catalog import Catalog
from llmtool.redact import Redactor
from llmtool.service import LLMService
from llmtool.settings import Settings, load_settings
from llmtool.templates import TemplateRegistry

log = logging.getLogger(__name__)


class AppContext:
    """The app's shared state. `store` is the run store, set up by `start()` (None until there is one)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        catalog = Catalog(self.settings)
        self.model_ids = [model.id for model in catalog.usable()]
        self.default_model = catalog.default_model()
        self.redact = Redactor.from_settings(self.settings)
        # Rescans on every call: a template edited on disk is used by the next preview or run.
        self.registry = TemplateRegistry(self.settings.prompts_dir)
        self.store = None
        self._export_dir: Path | None = None
        self._service: LLMService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # run id → set when the handler streaming that run has returned (see handlers.stop)
        self._streams: dict[str, asyncio.Event] = {}

    async def start(self) -> None:
        """Create the service and its provider clients now, on the running (server's) loop:
        importing an SDK takes most of a second, which the first user would otherwise wait for."""
        service = self.service
        for model in service.models():
            try:
                service.providers.for_model(model)
            except Exception:  # a provider that cannot be built fails that user's run, clearly
                log.warning("could not prepare the client for %s", model.id, exc_info=True)

    @property
    def service(self) -> LLMService:
        loop = asyncio.get_running_loop()
        if self._service is None:
            self._service, self._loop = LLMService(self.settings), loop
        elif self._loop is not loop:
            raise RuntimeError("the LLMService belongs to another event loop: one server per AppContext")
        return self._service

    def started_service(self) -> LLMService | None:
        """The service once the server created it, read from any thread (tests, diagnostics)."""
        return self._service

    @property
    def datasets_dir(self) -> Path:
        return Path(self.settings.prompts_dir) / "datasets"

    def export_dir(self) -> Path:
        """A directory of our own for files the page offers for download (never a user's path)."""
        if self._export_dir is None or not self._export_dir.is_dir():
            self._export_dir = Path(tempfile.mkdtemp(prefix="llmtool-ui-"))
        return self._export_dir

    @property
    def update_interval(self) -> float:
        return self.settings.ui.update_interval

    def stream_started(self, run_id: str) -> None:
        self._streams[run_id] = asyncio.Event()

    def stream_ended(self, run_id: str) -> None:
        ended = self._streams.pop(run_id, None)
        if ended is not None:
            ended.set()

    async def wait_stream_ended(self, run_id: str, timeout: float) -> None:
        ended = self._streams.get(run_id)
        if ended is not None:
            try:
                async with asyncio.timeout(timeout):
                    await ended.wait()
            except TimeoutError:
                pass

    async def aclose(self) -> None:
        if self._service is not None:
            await self._service.aclose()
            self._service = self._loop = None
        if self._export_dir is not None:
            shutil.rmtree(self._export_dir, ignore_errors=True)
            self._export_dir = None


def app_context(request: Request) -> AppContext:
    """The app's context, for a router: `context: AppContext = Depends(app_context)`."""
    context: AppContext = request.app.state.context
    return context
