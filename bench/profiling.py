"""py-spy for the process benchmarks (bench_api.py, bench_chat_relay.py): record a process's stacks
for the length of a `with` block, read them back with short frame names, and rank llmtool's functions.
Where the samples go (the buckets) is each benchmark's own table: the apps they compare differ.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

SAMPLE_RATE = 200  # py-spy samples per second


class Profiler:
    """`py-spy record` on a process for the length of a `with` block."""

    def __init__(self, pid: int, out: Path, rate: int = SAMPLE_RATE) -> None:
        self.pid, self.out, self.rate = pid, out, rate

    def __enter__(self) -> Profiler:
        self.process = subprocess.Popen(
            ["py-spy", "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
             "--output", str(self.out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(1.0)  # py-spy attaches
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(2)  # SIGINT: py-spy writes its output and exits
        _, err = self.process.communicate(timeout=60)
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err.strip()[-500:]}")


def short_frame(frame: str) -> str:
    """'frame (/tmp/…/source/llmtool/web/sse.py:40)' → 'frame (llmtool/web/sse.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/source/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def stacks(raw: Path) -> list[tuple[list[str], int]]:
    """py-spy's collapsed stacks: (frames root first, samples)."""
    found = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            found.append(([short_frame(f) for f in stack.split(";")], int(count)))
    return found


def ours(frame: str) -> bool:
    """An llmtool frame, but for a pass-through ASGI middleware's."""
    return "(llmtool/" in frame and "llmtool/web/security" not in frame


def top_frames(raw: Path, limit: int, keep: Callable[[str], bool],
               self_to_next_kept: bool = False) -> tuple[int, list[tuple[str, int, int]]]:
    """The total samples and (frame, inclusive, self) of the frames `keep` accepts, the most inclusive
    first. A frame counts once per stack. `self` is the samples whose innermost frame it is, or with
    `self_to_next_kept` those whose innermost frame `keep` accepts it is (so a function's calls into
    code `keep` rejects, such as libraries, count as its own)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for frames, count in stacks(raw):
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        innermost = next((f for f in reversed(frames) if keep(f)), None) if self_to_next_kept else frames[-1]
        if innermost is not None:
            own[innermost] += count
    chosen = [(f, n, own[f]) for f, n in inclusive.most_common() if keep(f)]
    return total, chosen[:limit]
