"""What the process benchmarks (bench_api.py, bench_chat_relay.py, bench_ui.py) share: a uvicorn app
served until stdin closes, stopping such a process, its CPU from /proc, the report's statistics, and
llmtool as committed at a git ref.

The benchmarks are run as scripts (`python bench/bench_x.py`), which puts this folder first on
sys.path, in the benchmark and in its `serve` subprocesses (the same script): `import support` works
in both. A --ref snapshot holds only the `llmtool` package; the benchmarks themselves always come
from the working tree.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the server processes ------------------------------------------------------------------------
def serve_app(app: Any, which: str) -> None:
    """Serve an ASGI app under uvicorn on a free port of 127.0.0.1, print `PORT n`, run until stdin closes."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"bench-{which}", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit(f"{which}: the server did not start")
        time.sleep(0.01)
    print(f"PORT {server.servers[0].sockets[0].getsockname()[1]}", flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    server.should_exit = True
    thread.join(timeout=10)


def stop(process: subprocess.Popen[str]) -> None:
    """End a `serve` process: close its stdin (it then stops), kill it if it has not ended in 15 s."""
    if process.stdin is not None and not process.stdin.closed:
        process.stdin.close()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- CPU, from /proc -----------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """The CPU seconds a process has used (/proc/PID/stat: utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def waited_seconds(pid: int) -> float:
    """Seconds the process's threads were runnable but waited for a CPU (/proc/PID/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):  # the thread ended meanwhile
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def machine_busy_seconds() -> float:
    """CPU seconds all of the machine's CPUs were busy since boot (/proc/stat: all but idle and iowait)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS


# -- the report ----------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """The value at rank q (0–1) of the sorted values, the nearest rank (no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


# -- llmtool as committed (--ref) ----------------------------------------------------------------
def snapshot(ref: str, into: Path) -> Path:
    """The `llmtool` package as committed at `ref`, extracted into `into` (a PYTHONPATH entry)."""
    root = Path(__file__).resolve().parent.parent
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(root), "archive", ref, "llmtool"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def with_source(env: dict[str, str], source: Path | None) -> dict[str, str]:
    """`env` with `source` (a snapshot, see --ref) first on PYTHONPATH, ahead of the working tree."""
    if source is None:
        return env
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))}
