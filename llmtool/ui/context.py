"""What the handlers of one app share: settings, the one LLMService, redaction, streams in flight.

The service is created on the server's event loop (at startup by `warm_up`, or on first use under
`gradio app.py`): runs belong to the loop that started them, and Gradio runs `async def` handlers
on the server's loop. Nothing here holds a
secret that could reach the browser; the settings stay on the server.
"""

from __future__ import annotations

import asyncio
import logging

from llmtool.catalog import Catalog
from llmtool.service import LLMService
from llmtool.settings import Settings, load_settings
from llmtool.ui.redact import Redactor

log = logging.getLogger(__name__)


class UIContext:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        catalog = Catalog(self.settings)
        self.model_ids = [model.id for model in catalog.usable()]
        self.default_model = catalog.default_model()
        self.redact = Redactor.from_settings(self.settings)
        self._service: LLMService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # run id → set when the handler streaming that run has returned (see handlers.stop)
        self._streams: dict[str, asyncio.Event] = {}

    @property
    def service(self) -> LLMService:
        loop = asyncio.get_running_loop()
        if self._service is None:
            self._service, self._loop = LLMService(self.settings), loop
        elif self._loop is not loop:
            raise RuntimeError("the LLMService belongs to another event loop: one server per UIContext")
        return self._service

    def warm_up(self) -> None:
        """Create the service and its provider clients now, on the server's loop: importing an SDK
        takes most of a second, which the first user would otherwise wait for."""
        service = self.service
        for model in service.models():
            try:
                service.providers.for_model(model)
            except Exception:  # a provider that cannot be built fails that user's run, clearly
                log.warning("could not prepare the client for %s", model.id, exc_info=True)

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
