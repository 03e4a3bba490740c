"""Python validation rules that misbehave, for the time-limit tests (run in a checking process)."""

from __future__ import annotations

import os
import time


def sleeps(text: str) -> bool:
    time.sleep(30)
    return True


def spins(text: str) -> bool:
    while True:  # pure Python holding the GIL: a thread could not stop this, a process can
        pass


def exits(text: str) -> bool:
    os._exit(3)


def passes(text: str) -> bool:
    return True


def pid(text: str) -> str:
    return f"pid {os.getpid()}"
