"""What one app shares: settings, the one LLMService, the template registry, redaction, streams
in flight, a private directory for exported files.

Files stay ours (`llmtool/web/files.py`): building a context makes the process write owner-only
(umask 077) and gives Gradio a private cache folder before any blocks exist; while the server runs,
uploads and exports older than `ui.files_keep_minutes` (default 60) are swept every few minutes.

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
import concurrent.futures
import logging
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request

from llmtool import checks
from llmtool.accounts import Accounts, Principal
from llmtool.catalog import Catalog
from llmtool.redact import Redactor
from llmtool.service import LLMService
from llmtool.settings import Settings, load_settings
from llmtool.store import StoreError, open_store
from llmtool.templates import TemplateRegistry
from llmtool.web import files
from llmtool.web.sessions import Sessions

if TYPE_CHECKING:
    from llmtool.replicas.hub import Replicas
    from llmtool.replicas.limits import SharedLimits

T = TypeVar("T")
# The login check (user, password) → bool; None: no logins configured.
PasswordCheck = Callable[[str, str], bool]

log = logging.getLogger(__name__)
# The sweeps of old uploads and exports: every quarter of the time files are kept, within these.
SWEEP_EVERY = (1.0, 300.0)


class AppContext:
    """The app's shared state. The run store is the service's (`service.store`), opened by `start()`;
    `prepare()` (before the pages are built) checks it opens and reads the deployment's secret key."""

    def __init__(self, settings: Settings | None = None, *, auth: PasswordCheck | None = None,
                 accounts: Accounts | None = None) -> None:
        self.settings = settings or load_settings()
        # Before Gradio builds anything: it reads its cache folder when blocks and the app are made.
        self.gradio_cache = files.keep_files_private()
        if accounts is None and auth is None:  # the settings' users file (or LLMTOOL_USERS), if any
            accounts = Accounts.load(self.settings)
        # The same check the Gradio login uses; `/api` asks for HTTP Basic with it. None: no login.
        self.auth = accounts.check if accounts is not None and auth is None else auth
        self._accounts = accounts
        catalog = Catalog(self.settings)
        self.model_ids = [model.id for model in catalog.usable()]
        self.default_model = catalog.default_model()
        self.redact = Redactor.from_settings(self.settings)
        # Rescans on every call: a template edited on disk is used by the next preview or run.
        self.registry = TemplateRegistry(self.settings.prompts_dir)
        # Shared by every process of a deployment (kept in the store): signs what the browser keeps.
        self.secret_key: str | None = None
        self._sessions: Sessions | None = None
        self._attaching: asyncio.Task[None] | None = None
        self._export_dir: Path | None = None
        self._sweeping: asyncio.Task[None] | None = None
        self._service: LLMService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # With `settings.redis_url`: live events and Stop shared with the other replicas (`llmtool/replicas`).
        self.replicas: Replicas | None = None
        # ... and the limits (runs per minute and at once, budgets, failed logins) counted across them.
        self.shared_limits: SharedLimits | None = None
        # `/readyz`'s last look (monotonic time, the problem or None): kept a second (web/health.py)
        self.readiness: tuple[float, str | None] | None = None
        # run id → set when the handler streaming that run has returned (see handlers.stop)
        self._streams: dict[str, tuple[int, asyncio.Event]] = {}

    def prepare(self) -> str:
        """Open (and migrate) the run store once, before the server starts, and read the
        deployment's secret key; a `StoreError` says why the store cannot be used. Returns the key."""
        if self.secret_key is None:
            self.secret_key = _run_now(_read_secret_key(self.settings.database_url))
        return self.secret_key

    @property
    def accounts(self) -> Accounts | None:
        """The logins (`llmtool/accounts`): the users file's, or a bare `auth` check's; both throttled.
        None without logins."""
        if self.auth is None:
            return None
        if self._accounts is None or self._accounts.check is not self.auth:
            self._accounts = Accounts(self.settings, check=self.auth)
        return self._accounts

    def principal(self, user: str | None) -> Principal | None:
        """Who `user` is and what their role allows; None without logins (or for no user)."""
        accounts = self.accounts
        return None if accounts is None else accounts.principal(user)

    @property
    def sessions(self) -> Sessions:
        """The login sessions (kept in the run store, signed with `secret_key`)."""
        if self._sessions is None:
            ui = self.settings.ui
            self._sessions = Sessions(self.prepare(), lambda: self.service.store,
                                      idle_seconds=ui.session_idle_minutes * 60,
                                      max_seconds=ui.session_max_days * 86400)
        return self._sessions

    async def start(self) -> None:
        """Create the service with its run store, and its provider clients, now, on the running
        (server's) loop: importing an SDK takes most of a second, which the first user would
        otherwise wait for."""
        if self._service is None:
            self._service, self._loop = (await LLMService.open(self.settings, principals=self._principals()),
                                         asyncio.get_running_loop())
        if self.settings.redis_url and self.replicas is None:
            from llmtool.replicas import connect  # (imports redis only when it is used)

            self.replicas = await connect(self._service, self.settings.redis_url)
        if self.settings.redis_url and self.shared_limits is None:
            from llmtool.replicas.limits import share_limits

            self.shared_limits = share_limits(self._service, self.accounts, self.settings.redis_url)
        self._start_sweeping()
        service = self.service
        for model in service.models():
            try:
                service.providers.for_model(model)
            except Exception:  # a provider that cannot be built fails that user's run, clearly
                log.warning("could not prepare the client for %s", model.id, exc_info=True)

    def _principals(self) -> Callable[[str], Principal | None] | None:
        """What the service asks to know who a login is (its role's permissions and limits); None
        without logins: nothing is limited."""
        return self.principal if self.auth is not None else None

    @property
    def service(self) -> LLMService:
        loop = asyncio.get_running_loop()
        if self._service is None:
            # Only under `gradio app.py`, where no lifespan of ours runs `start`: runs are kept
            # from the moment the store is attached (a fraction of a second).
            self._service, self._loop = LLMService(self.settings, principals=self._principals()), loop
            self._attaching = loop.create_task(self._attach_store(self._service))
            self._start_sweeping()
        elif self._loop is not loop:
            raise RuntimeError("the LLMService belongs to another event loop: one server per AppContext")
        return self._service

    async def _attach_store(self, service: LLMService) -> None:
        try:
            await service.attach_store(await open_store(self.settings.database_url))
        except StoreError as error:
            log.error("runs are not kept: %s", error.message)

    def started_service(self) -> LLMService | None:
        """The service once the server created it, read from any thread (tests, diagnostics)."""
        return self._service

    @property
    def datasets_dir(self) -> Path:
        return Path(self.settings.prompts_dir) / "datasets"

    def export_dir(self) -> Path:
        """A directory of our own (0700) for files the page offers for download (never a user's
        path); its files are swept with Gradio's copies of them."""
        if self._export_dir is None or not self._export_dir.is_dir():
            self._export_dir = Path(tempfile.mkdtemp(prefix="llmtool-ui-"))
        return self._export_dir

    @property
    def files_keep_seconds(self) -> float:
        return self.settings.ui.files_keep_minutes * 60

    def sweep_files(self, now: float | None = None) -> int:
        """Delete the uploads, exports and Gradio's copies older than `ui.files_keep_minutes` (and
        make what stays owner-only); how many files went. Blocking: the sweeper runs it in a thread."""
        folders = [self.gradio_cache, self._export_dir]
        return sum(files.sweep(folder, self.files_keep_seconds, now=now)
                   for folder in folders if folder is not None and folder.is_dir())

    def _start_sweeping(self) -> None:
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = asyncio.get_running_loop().create_task(self._sweep_periodically())

    async def _sweep_periodically(self) -> None:
        low, high = SWEEP_EVERY
        period = min(max(self.files_keep_seconds / 4, low), high)
        while True:
            await asyncio.sleep(period)
            try:
                removed = await asyncio.to_thread(self.sweep_files)
            except Exception:  # a sweep that fails must not stop the next one
                log.warning("could not sweep old uploads and exports", exc_info=True)
                continue
            if removed:
                log.info("deleted %d uploaded or exported files older than %g min", removed,
                         self.settings.ui.files_keep_minutes)

    def stream_started(self, run_id: str) -> None:
        """A page follows `run_id` (two tabs restoring one conversation follow the same run)."""
        count, ended = self._streams.get(run_id, (0, asyncio.Event()))
        self._streams[run_id] = (count + 1, ended)

    def stream_ended(self, run_id: str) -> None:
        count, ended = self._streams.get(run_id, (1, asyncio.Event()))
        if count > 1:
            self._streams[run_id] = (count - 1, ended)
            return
        self._streams.pop(run_id, None)
        ended.set()  # the last follower is gone

    async def wait_stream_ended(self, run_id: str, timeout: float) -> None:
        _, ended = self._streams.get(run_id, (0, None))
        if ended is not None:
            try:
                async with asyncio.timeout(timeout):
                    await ended.wait()
            except TimeoutError:
                pass

    async def drain(self, grace: float | None = None) -> list[str]:
        """Take no new run; let running ones finish up to `grace` seconds (`runs.drain_seconds`), then
        interrupt the rest (see `LLMService.drain`). While draining `/readyz` answers 503."""
        if self._service is None:
            return []
        return await self._service.drain(self.settings.runs.drain_seconds if grace is None else grace)

    async def aclose(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
            await asyncio.gather(self._sweeping, return_exceptions=True)
            self._sweeping = None
        if self._service is not None:
            await self._service.aclose()
            if self.replicas is not None:  # after the runs stopped: their last events reach Redis too
                await self.replicas.aclose()
                self.replicas = None
            if self.shared_limits is not None:
                await self.shared_limits.aclose()
                self.shared_limits = None
            self._service = self._loop = None
        await checks.aclose()  # the checking processes end with the server
        if self._export_dir is not None:
            shutil.rmtree(self._export_dir, ignore_errors=True)
            self._export_dir = None


async def _read_secret_key(database_url: str | None) -> str:
    store = await open_store(database_url)
    try:
        return await store.shared_secret("app-secret-key")
    finally:
        await store.aclose()


def _run_now(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from sync code, even when called from inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def app_context(request: Request) -> AppContext:
    """The app's context, from a request (routers take it through `context_dependency`)."""
    context: AppContext = request.app.state.context
    return context


async def context_dependency(request: Request) -> AppContext:
    """`app_context` as a FastAPI dependency: `async`, so FastAPI calls it on the loop instead of
    sending it to a worker thread and back (a round trip per request, measurable under load)."""
    return app_context(request)
