"""`python app.py`: parse the flags, set up the login, serve the app (or reload it under `gradio app.py`).

    python app.py                                   # http://127.0.0.1:7860, demo model without a key
    python app.py --host 0.0.0.0 --users-file users.txt     # llmtool users add NAME --users-file users.txt
    python app.py --share --users-file users.txt

Every flag has a settings equivalent (`LLMTOOL_UI__HOST`, `LLMTOOL_UI__PORT`,
`LLMTOOL_UI__USERS_FILE`, `LLMTOOL_CONFIG`, or `[ui]` in the config file). Logins come from a users
file (`user:hash[:role]` lines, `llmtool/accounts/users.py`) and/or `LLMTOOL_USERS` (the same
entries, one per line); passwords are never taken from the command line, where other users of the
machine could read them, nor kept in plain text. `--share` without a login is refused.

With users, llmtool owns the login (`llmtool/web/login.py`): a `/login` form, sessions kept in the run
store for `ui.session_idle_minutes` of disuse (default 720, 12 h) and at most `ui.session_max_days`
(default 7), one cookie for the Gradio tool, `/lite` and `/api` (which also takes HTTP Basic).
Reload mode (`gradio app.py`) is the exception: Gradio's own server runs the app, our routes (and
so `/login`) do not exist there, and the login is Gradio's own `auth=` with the same users and
check (its tokens live in that one process's memory and never expire: a development convenience).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import gradio as gr
import uvicorn

from llmtool.accounts import Accounts
from llmtool.accounts.users import USERS_ENV
from llmtool.errors import InvalidRequestError, UsageError
from llmtool.settings import Settings, load_settings
from llmtool.store import StoreError, default_database_url, describe_url
from llmtool.ui.blocks import build_demo, page_options
from llmtool.web.app import create_app
from llmtool.web.context import AppContext

EXIT_USAGE = 2
SHARE_NEEDS_LOGIN = (
    "--share puts the app on a public URL that anyone with the link can use (and spend your API "
    "credit): set up a login first, with --users-file FILE (made with `llmtool users add NAME "
    f"--users-file FILE`) or {USERS_ENV} (the same user:hash[:role] lines)."
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="Serve llmtool's chat tab. Without an API key it runs the offline demo model.",
    )
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1; env LLMTOOL_UI__HOST)")
    parser.add_argument("--port", type=int, help="port (default 7860; 0 picks a free one; env LLMTOOL_UI__PORT)")
    parser.add_argument("--share", action="store_true",
                        help="also serve on a temporary public gradio.live link (needs a login)")
    parser.add_argument("--users-file", type=Path,
                        help="login: a file of user:hash[:role] lines, made with `llmtool users add` "
                        f"(env LLMTOOL_UI__USERS_FILE; also {USERS_ENV})")
    parser.add_argument("--config", help="config file (default $LLMTOOL_CONFIG or ./llmtool.toml)")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Settings:
    ui = {k: v for k, v in (("host", args.host), ("port", args.port), ("users_file", args.users_file)) if v is not None}
    return load_settings(args.config, **({"ui": ui} if ui else {}))


def load_accounts(settings: Settings) -> Accounts | None:
    """The logins of the users file and `LLMTOOL_USERS` (None: no login); a wrong file is a
    UsageError naming its line, and a file others can read is a warning on stderr."""
    accounts = Accounts.load(settings)
    for warning in accounts.warnings if accounts is not None else []:
        print(f"llmtool: warning: {warning}", file=sys.stderr)
    return accounts


def reload_mode() -> bool:
    """True under `gradio app.py`, which re-runs app.py and swaps in the new module-level `demo`."""
    return bool(os.environ.get("GRADIO_WATCH_DIRS"))


def module_demo() -> gr.Blocks:
    """The module-level `demo` of app.py, or a clear message and exit when the settings are wrong.

    Honours `--config` in sys.argv (`python app.py --config F`, `gradio app.py -- --config F`);
    everything else in the settings comes from the environment and the config file.
    """
    try:
        settings = load_settings(_config_flag(sys.argv[1:]))
        # The users only show the page's Log out link: main() passes the check to Gradio's `auth=`.
        return build_demo(AppContext(settings, accounts=Accounts.load(settings)))
    except (UsageError, StoreError) as error:
        print(f"llmtool: {_startup_problem(error)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _startup_problem(error: UsageError | StoreError) -> str:
    if isinstance(error, StoreError):
        return f"cannot keep runs: {error.message} (set LLMTOOL_DATABASE_URL or database_url in the config file)"
    return error.message


def _config_flag(argv: Sequence[str]) -> str | None:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--config")
    known, _ = parser.parse_known_args(argv)
    return known.config


def main(argv: Sequence[str] | None = None, demo: gr.Blocks | None = None) -> int:
    """Serve the app (Gradio's own server, on `demo`, under `gradio app.py`, so its reload works;
    the service is then created on first use, as no lifespan of ours runs)."""
    args = parse_args(argv)
    try:
        settings = settings_from_args(args)
        accounts = load_accounts(settings)
        if args.share and accounts is None:
            raise InvalidRequestError(SHARE_NEEDS_LOGIN)
    except UsageError as error:
        print(f"llmtool: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    auth = accounts.check if accounts is not None else None
    ui = settings.ui
    if ui.host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        print(f"llmtool: warning: listening on {ui.host} without a login; anyone who can reach it "
              "can use your API keys' credit", file=sys.stderr)
    try:
        if reload_mode():
            if demo is None:  # app.py passes its module-level demo, built with the same --config
                demo = build_demo(AppContext(settings, accounts=accounts))
            demo.launch(server_name=ui.host, server_port=ui.port, max_threads=demo.max_threads, auth=auth,
                        share=False, **page_options())
            return 0
        app = create_app(context=AppContext(settings, accounts=accounts))
    except (UsageError, StoreError) as error:
        print(f"llmtool: {_startup_problem(error)}", file=sys.stderr)
        return EXIT_USAGE
    print(f"llmtool: runs are kept in {describe_url(settings.database_url or default_database_url())}",
          flush=True)
    server = uvicorn.Server(uvicorn.Config(
        app, host=ui.host, port=ui.port, log_level="warning", timeout_graceful_shutdown=3,
    ))
    threading.Thread(target=_announce, args=(server, ui.host, args.share), daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl+C after its shutdown
        server.run()
    return 0


def _announce(server: uvicorn.Server, host: str, share: bool) -> None:
    """Once the server listens: print its URL, and open the share tunnel if asked."""
    while not server.started:
        if server.should_exit:
            return
        threading.Event().wait(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"llmtool: serving on http://{shown}:{port} (Ctrl+C stops)", flush=True)
    if share:
        from gradio import networking

        try:
            url = networking.setup_tunnel(shown, port, secrets.token_urlsafe(32), None, None)
        except Exception as exc:  # no internet, blocked binary download…: the local app keeps running
            print(f"llmtool: could not open a share link ({exc}); the app is still served locally",
                  file=sys.stderr, flush=True)
            return
        print(f"llmtool: public link (temporary, login required): {url}", flush=True)
