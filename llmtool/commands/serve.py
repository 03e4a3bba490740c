"""`llmtool serve --replicas N`: N replicas of the app behind Debian's nginx, on one machine.

    llmtool serve --replicas 2                     # http://127.0.0.1:7860, two processes behind nginx
    llmtool serve --replicas 4 --host 0.0.0.0 --port 8080
    LLMTOOL_REDIS_URL=redis://localhost:6379/0 llmtool serve --replicas 2

Every replica runs `python app.py`'s serving path with the same settings (environment, `--config`),
on a loopback port of its own; nginx (a child process, its files in a temp directory) balances them
(`llmtool/replicas/serve.py`). SIGTERM or Ctrl+C: the replicas drain (running runs finish, up to
`runs.drain_seconds`), then nginx stops. Exit codes: 0 stopped cleanly, 1 nginx stopped on its own,
2 bad usage (no nginx, an in-memory store with several replicas, a replica that does not start).
"""

from __future__ import annotations

import argparse
import sys

from llmtool.console import EXIT_OK
from llmtool.settings import load_settings


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve", help="serve the app as N replicas behind nginx",
        description="Start N replicas of the app on loopback ports behind Debian's nginx (cookie affinity "
        "for the Gradio tool, round robin for /api and /lite). Ctrl+C drains them and stops.",
    )
    serve.add_argument("--replicas", type=int, default=2, metavar="N", help="app processes (default 2)")
    serve.add_argument("--host", help="nginx's interface (default: ui.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="nginx's port (default: ui.port, 7860; 0 picks a free one)")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from llmtool.replicas.serve import ReplicaSet, check_plan

    settings = load_settings(args.config)
    for warning in check_plan(settings, args.replicas):
        print(f"llmtool: warning: {warning}", file=sys.stderr)
    host = args.host or settings.ui.host
    port = settings.ui.port if args.port is None else args.port
    if host not in ("127.0.0.1", "localhost", "::1") and not (settings.ui.users_file or _users_env()):
        print(f"llmtool: warning: listening on {host} without a login; anyone who can reach it can use "
              "your API keys' credit", file=sys.stderr)
    replicas = ReplicaSet(settings, replicas=args.replicas, host=host, port=port, config=args.config)
    with replicas:
        print(f"llmtool: serving on {replicas.url} ({args.replicas} replica{'s' if args.replicas != 1 else ''} "
              f"on ports {', '.join(map(str, replicas.ports))} behind nginx; Ctrl+C stops)", flush=True)
        code = replicas.run_until_signal()
    return code if code else EXIT_OK


def _users_env() -> bool:
    import os

    from llmtool.accounts.users import USERS_ENV

    return bool(os.environ.get(USERS_ENV, "").strip())
