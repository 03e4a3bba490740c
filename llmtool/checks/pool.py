"""A small pool of checking processes: long checks leave the event loop and stop at a time limit.

    pool = shared_pool()                           # one per process; no process starts until used
    result = await pool.run("check_text", rules, text, time_limit=2.0, what="the answer")
    await aclose()                                 # at shutdown (also registered with atexit)

Why processes, not threads: Python's `re` and most pure-Python work hold the GIL, so a check in a
thread still freezes the loop; and a thread cannot be stopped, a process can. Each worker runs one
task at a time (`llmtool.checks.tasks`, a fixed table), answers over a pipe, and is watched with
`loop.add_reader`, so the pool works from any event loop and any thread. A task that runs out of
time raises `CheckTimedOut` (which names the stage that ran too long); its worker is killed and a
fresh one starts when next needed. Workers start lazily (up to `POOL_SIZE`), are reused, and end on
their own after a while without work or once they grew big (`llmtool.checks.worker`).

Where no process can be started (no `sys.executable`, spawning refused, an event loop without
`add_reader` such as Windows' proactor), the pool says so once in the log and runs tasks inline.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from llmtool.checks.tasks import TASKS

log = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT = 2.0  # seconds one check of a completed answer may take
POOL_SIZE = max(1, min(4, os.cpu_count() or 1))
START_TIMEOUT = 60.0  # seconds for a new worker to import its modules and say it is ready
_HEADER = struct.Struct(">I")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder llmtool is imported from
_BOOT = (
    f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); "
    "from llmtool.checks.worker import main; main()"
)
_NOTHING = object()


class CheckError(Exception):
    """A check did not finish; `problems` are those found before it stopped."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class CheckTimedOut(CheckError):
    def __init__(self, what: str, time_limit: float, problems: list[str] | None = None) -> None:
        super().__init__(f"the check of {what} took longer than {time_limit:g} s and was stopped", problems)
        self.what = what
        self.time_limit = time_limit


class CheckFailed(CheckError):
    """The worker died (a validator called os._exit, memory ran out…) or the task raised."""


class _CannotStart(Exception):
    pass


class _Worker:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdin is not None and popen.stdout is not None
        self.popen = popen
        self.to_worker = popen.stdin.fileno()
        self.from_worker = popen.stdout.fileno()
        os.set_blocking(self.to_worker, False)
        os.set_blocking(self.from_worker, False)
        self.buffer = bytearray()
        self.eof = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return not self.eof and self.popen.poll() is None

    def take_frame(self) -> Any:
        if len(self.buffer) < _HEADER.size:
            return _NOTHING
        (size,) = _HEADER.unpack_from(self.buffer)
        if len(self.buffer) < _HEADER.size + size:
            return _NOTHING
        body = bytes(self.buffer[_HEADER.size:_HEADER.size + size])
        del self.buffer[:_HEADER.size + size]
        return pickle.loads(body)

    def read_available(self) -> None:
        while True:
            try:
                chunk = os.read(self.from_worker, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                return
            self.buffer += chunk

    async def next_frame(self) -> Any:
        loop = asyncio.get_running_loop()
        while (frame := self.take_frame()) is _NOTHING:
            if self.eof:
                raise EOFError
            readable: asyncio.Future[None] = loop.create_future()

            def on_readable(readable: asyncio.Future[None] = readable) -> None:
                self.read_available()
                if not readable.done():
                    readable.set_result(None)

            loop.add_reader(self.from_worker, on_readable)
            try:
                await readable
            finally:
                loop.remove_reader(self.from_worker)
        return frame

    async def send(self, frame: Any) -> None:
        body = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        data = memoryview(_HEADER.pack(len(body)) + body)
        loop = asyncio.get_running_loop()
        while data:
            try:
                written = os.write(self.to_worker, data)
            except BlockingIOError:
                written = 0
            data = data[written:]
            if data:  # the pipe is full: wait until the worker has read some
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(self.to_worker, _settle, writable, None)
                try:
                    await writable
                finally:
                    loop.remove_writer(self.to_worker)

    def close_input(self) -> None:
        with contextlib.suppress(OSError):
            self.popen.stdin.close()  # type: ignore[union-attr]

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.popen.kill()
        self.close_input()

    def close_output(self) -> None:
        """Once it ended and no one reads it (an in-flight read would see its fd vanish)."""
        with contextlib.suppress(OSError):
            self.popen.stdout.close()  # type: ignore[union-attr]


class CheckPool:
    """Up to `size` checking processes, shared by every event loop and thread of this process."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = max(1, size)
        self.inline = False  # set once processes turned out impossible here
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._busy = 0  # workers being started or running a task (idle ones are in _idle)
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[_Worker | None]]] = deque()
        self._ended: list[_Worker] = []  # killed, not yet reaped
        self._closed = False
        self.started = 0  # workers started so far (for tests and the benchmark)

    # -- the one public operation ---------------------------------------------------------------
    async def run(self, task: str, *args: Any, time_limit: float = DEFAULT_TIME_LIMIT, what: str = "the answer"
                  ) -> Any:
        """`task` (a name in llmtool.checks.tasks.TASKS) run in a worker: its result, or a
        CheckTimedOut after `time_limit` seconds (the worker is killed), or a CheckFailed."""
        if task not in TASKS:
            raise ValueError(f"unknown check task {task!r}")
        if self._closed:
            raise CheckFailed("the checking processes were shut down")
        for attempt in (1, 2):
            if self.inline:
                return _inline(task, args)
            try:
                worker = await self._acquire()
            except _CannotStart as exc:
                if not self.inline:
                    self.inline = True
                    log.warning("checks run inline, on the event loop and without a time limit: %s", exc)
                return _inline(task, args)
            stage, problems, received = what, [], False
            try:
                await worker.send((task, args))
                async with asyncio.timeout(time_limit):
                    while True:
                        frame = await worker.next_frame()
                        received = True
                        if frame[0] == "stage":
                            stage = frame[1]
                            problems.extend(frame[2])
                            continue
                        break
            except TimeoutError:
                self._discard(worker)
                log.warning("a check of %s took longer than %g s: worker %s stopped", stage, time_limit, worker.pid)
                raise CheckTimedOut(stage, time_limit, problems) from None
            except (EOFError, OSError, pickle.UnpicklingError):
                self._discard(worker)
                if not received and attempt == 1:
                    continue  # it ended before it took the task (idle too long, killed from outside): again
                code = worker.popen.poll()
                how = f" (its process exited with code {code})" if code is not None else " (its process ended)"
                raise CheckFailed(f"the check of {stage} stopped unexpectedly{how}", problems) from None
            except BaseException:  # cancelled: the task is abandoned, so is its worker
                self._discard(worker)
                raise
            kind, result, retiring = frame
            if retiring:
                self._discard(worker, kill=False)
            else:
                self._release(worker)
            if kind == "error":
                raise CheckFailed(f"the check of {stage} failed: {result}", problems)
            return result
        raise AssertionError("unreachable")

    # -- workers -----------------------------------------------------------------------------------
    async def _acquire(self) -> _Worker:
        loop = asyncio.get_running_loop()
        while True:
            waiter: asyncio.Future[_Worker | None] | None = None
            with self._lock:
                self._reap()
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        self._busy += 1
                        return worker
                    self._forget(worker)  # ended on its own (idle too long): its slot is free
                    self._ended.append(worker)
                if self._busy + len(self._idle) < self.size:
                    self._busy += 1
                else:
                    waiter = loop.create_future()
                    self._waiters.append((loop, waiter))
            if waiter is None:
                try:
                    return await self._start()
                except BaseException:
                    with self._lock:
                        self._busy -= 1
                        self._wake(None)
                    raise
            try:
                given = await waiter
            except asyncio.CancelledError:
                with self._lock, contextlib.suppress(ValueError):
                    self._waiters.remove((loop, waiter))
                if waiter.done() and not waiter.cancelled() and (handed := waiter.result()) is not None:
                    self._release(handed)
                raise
            if given is not None:
                return given

    async def _start(self) -> _Worker:
        """A new worker, ready (its modules imported); its slot is already counted."""
        if not sys.executable:
            raise _CannotStart("no Python interpreter to start (sys.executable is empty)")
        try:
            popen = subprocess.Popen(  # noqa: ASYNC220 - vfork+exec: returns in a millisecond
                [sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
            )
        except (OSError, ValueError, NotImplementedError) as exc:
            raise _CannotStart(f"a checking process could not be started: {exc}") from None
        worker = _Worker(popen)
        with self._lock:
            self._all.add(worker)
            self.started += 1
        try:
            await worker.send(list(sys.path))
            async with asyncio.timeout(START_TIMEOUT):
                frame = await worker.next_frame()
            if frame[0] != "ready":
                raise EOFError
        except NotImplementedError as exc:
            self._kill(worker)
            raise _CannotStart(f"this event loop cannot watch a process's pipe: {exc}") from None
        except (TimeoutError, EOFError, OSError, pickle.UnpicklingError):
            self._kill(worker)
            code = popen.poll()
            raise _CannotStart(f"a checking process did not start (exit code {code})") from None
        except BaseException:
            self._kill(worker)
            raise
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed or not worker.alive():
                self._kill_locked(worker)
                self._busy -= 1
                self._wake(None)
                return
            self._busy -= 1
            self._idle.append(worker)
            self._wake_with_idle()

    def _wake_with_idle(self) -> None:
        """Hand an idle worker to the first waiter still waiting (called under the lock)."""
        while self._waiters and self._idle:
            loop, waiter = self._waiters.popleft()
            worker = self._idle.pop()
            self._busy += 1
            try:
                loop.call_soon_threadsafe(self._deliver, waiter, worker)
            except RuntimeError:  # that loop is closed
                self._busy -= 1
                self._idle.append(worker)

    def _deliver(self, waiter: asyncio.Future[_Worker | None], worker: _Worker) -> None:
        if waiter.done():  # cancelled meanwhile: the worker goes back
            self._release(worker)
        else:
            waiter.set_result(worker)

    def _wake(self, value: None) -> None:
        """A slot was freed: let the first waiter start a worker (called under the lock)."""
        while self._waiters:
            loop, waiter = self._waiters.popleft()
            try:
                loop.call_soon_threadsafe(_settle, waiter, value)
                return
            except RuntimeError:
                continue

    def _discard(self, worker: _Worker, kill: bool = True) -> None:
        with self._lock:
            if kill:
                self._kill_locked(worker)
            else:
                worker.close_input()
                self._forget(worker)
                self._ended.append(worker)
            self._busy -= 1
            self._wake(None)

    def _kill(self, worker: _Worker) -> None:
        with self._lock:
            self._kill_locked(worker)

    def _kill_locked(self, worker: _Worker) -> None:
        worker.kill()
        self._forget(worker)
        self._ended.append(worker)

    def _forget(self, worker: _Worker) -> None:
        self._all.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)

    def _reap(self) -> None:
        ended = []
        for worker in self._ended:
            if worker.popen.poll() is None:
                ended.append(worker)
            else:
                worker.close_output()
        self._ended = ended

    # -- shutting down -----------------------------------------------------------------------------
    async def aclose(self, grace: float = 1.0) -> None:
        """End every worker: idle ones are asked (their input closes), the rest killed after `grace`."""
        workers = self._shut()
        deadline = time.monotonic() + grace
        for worker in workers:  # a worker ends within milliseconds of its input closing
            while worker.popen.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        self._finish(workers)

    def close(self, grace: float = 0.5) -> None:
        """As `aclose`, without an event loop (atexit)."""
        workers = self._shut()
        deadline = time.monotonic() + grace
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.popen.wait(max(0.0, deadline - time.monotonic()))
        self._finish(workers)

    def _shut(self) -> list[_Worker]:
        with self._lock:
            self._closed = True
            workers = [*self._all, *self._ended]
            for worker in workers:
                worker.close_input()
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(waiter.cancel)
        return workers

    def _finish(self, workers: list[_Worker]) -> None:
        for worker in workers:
            if worker.popen.poll() is None:
                worker.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.popen.wait(0.5)
            worker.close_output()
        with self._lock:
            self._all.clear()
            self._idle.clear()
            self._ended.clear()

    @property
    def workers(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [w.pid for w in self._all if w.alive()]


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _inline(task: str, args: tuple[Any, ...]) -> Any:
    try:
        return TASKS[task](*args, report=_ignore)
    except Exception as exc:
        raise CheckFailed(f"the check failed: {type(exc).__name__}: {exc}") from exc


def _ignore(*_: Any) -> None:
    return None


_shared: CheckPool | None = None
_shared_pid = 0
_shared_lock = threading.Lock()


def shared_pool() -> CheckPool:
    """This process's pool (made on first use; no worker starts before a task needs one)."""
    global _shared, _shared_pid
    with _shared_lock:
        if _shared is None or _shared_pid != os.getpid() or _shared._closed:
            _shared, _shared_pid = CheckPool(), os.getpid()
            atexit.register(_shared.close)
        return _shared


async def aclose() -> None:
    """End the shared pool's workers (a later check starts a new pool). Safe to call any time."""
    global _shared
    with _shared_lock:
        pool, _shared = _shared, None
    if pool is not None:
        atexit.unregister(pool.close)
        await pool.aclose()


def set_pool(pool: CheckPool | None) -> CheckPool | None:
    """Replace the shared pool (tests: a pool of one worker); returns the one it replaces."""
    global _shared, _shared_pid
    with _shared_lock:
        previous, _shared, _shared_pid = _shared, pool, os.getpid()
    return previous

