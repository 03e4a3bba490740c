"""The `llmtool` subcommands, one module per family; `llmtool/cli.py` registers them from one list.

    chat.py        llmtool chat, llmtool models
    loopback.py    llmtool loopback (the offline fake provider server)
    templates.py   llmtool run, llmtool prompts list|check
    evaluation.py  llmtool eval
    logs.py        llmtool logs (list, show, export, delete the kept runs; path)
    users.py       llmtool users (add, passwd, role, remove, list the logins; API tokens)
    usage.py       llmtool usage (spend and runs per user per day)
    serve.py       llmtool serve --replicas N (N app processes behind nginx, on one machine)

Each module has `register(commands)`, adding its parsers with a `handler(args) -> exit code`.
"""
