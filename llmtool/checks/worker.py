"""A checking process: reads tasks from its stdin, answers on its stdout, one at a time.

Started by `llmtool.checks.pool` as `python -c "…; from llmtool.checks.worker import main; main()"`.
Frames both ways are a 4-byte big-endian length and a pickle. From the pool: first the parent's
`sys.path`, then `(task name, args)`. To the pool: `("ready", pid)` once its modules are imported,
then per task any number of `("stage", what, new problems)` and one `("done", result, retiring)` or
`("error", message, retiring)`.

What a validator prints goes to stderr (fd 1 is pointed there), never into the protocol. The process
ends when its stdin closes (the pool closed it, or the server is gone), after `IDLE_EXIT` seconds
without a task, when the server that started it is gone, or after a task that left it bigger than
`RETIRE_RSS` (it says so in its answer, so the pool starts a fresh one instead of reusing it).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
from typing import Any, BinaryIO

IDLE_EXIT = 600.0  # seconds without a task
RETIRE_RSS = 300 << 20  # bytes of resident memory after a task
_HEADER = struct.Struct(">I")


def read_frame(stream: BinaryIO, fd: int, idle: float | None = None) -> Any:
    """The next frame, or None at end of input (or after `idle` seconds with nothing)."""
    if idle is not None:
        ready, _, _ = select.select([fd], [], [], idle)
        if not ready:
            return None
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    body = _read_exactly(stream, size)
    return None if body is None else pickle.loads(body)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = stream.read(missing)  # unbuffered: select() above sees everything not yet read
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def write_frame(stream: BinaryIO, frame: Any) -> None:
    body = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _watch_parent(parent: int) -> None:
    """End this process once the server that started it is gone, even in the middle of a task."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the server, which closes us
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()
    in_fd, out_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # print() in a validator lands in stderr
    source = os.fdopen(in_fd, "rb", buffering=0)
    sink = os.fdopen(out_fd, "wb")
    path = read_frame(source, in_fd)
    if path is None:
        return
    sys.path[:] = list(path)
    # Expectations and assertions arrive pickled: their modules load before "ready" too, or a fresh
    # worker's first check would spend its time limit importing them (~1 s, the templates' stack).
    import llmtool.evaluation.assertion_kinds
    import llmtool.evaluation.dataset
    import llmtool.validation  # noqa: F401 - before "ready": a first check's time limit is its own
    from llmtool.checks.tasks import TASKS  # after sys.path: a validator imports as in the server
    write_frame(sink, ("ready", os.getpid()))
    while True:
        request = read_frame(source, in_fd, idle=IDLE_EXIT)
        if request is None:
            return
        name, args = request
        try:
            result = TASKS[name](*args, report=lambda *stage: write_frame(sink, ("stage", *stage)))
            answer: tuple[Any, ...] = ("done", result)
        except Exception as exc:  # a bug of ours or an unpicklable value: the pool reports it
            answer = ("error", f"{type(exc).__name__}: {exc}")
        retiring = resident_bytes() > RETIRE_RSS
        try:
            write_frame(sink, (*answer, retiring))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            write_frame(sink, ("error", f"the result could not be sent back: {exc}", retiring))
        if retiring:
            return
