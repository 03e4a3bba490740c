"""The Usage tab, for admins: runs and spend per user per UTC day, from the run store.

    with gr.Tab("Usage", visible=False) as tab:   # shown on page load to whom may see it (role_page.py)
        view = usage.build(context)
    view.refresh_on(tab.select)                   # and its Refresh button, its days and user fields

The figures are `llmtool usage`'s (`service.usage`): per day and user the runs started, what those
whose cost is known cost, how many ended without a known cost (a model without a price: never
counted as $0) and how many are still running. A line above the table sums it up per user.

The tab is hidden from a login whose role may not see everyone's usage, and that is no permission:
its endpoint (`/usage`) answers anyone who calls it, so the handler asks `service.may_see_usage`
itself and refuses everyone else with an error. A table and a line of text, no plots: Gradio's plots
need the `eval` our Content-Security-Policy forbids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from llmtool.errors import UsageError
from llmtool.store.usage import DailyUsage
from llmtool.ui import inputs
from llmtool.ui.roles import login
from llmtool.ui.status import escape_markdown
from llmtool.web.context import AppContext

log = logging.getLogger(__name__)

EVERYONE = "(everyone)"
NO_LOGIN = "(no login)"  # runs made without a login (the CLI, or a server without logins)
HEADERS = ["day (UTC)", "user", "runs", "spent", "cost unknown", "running"]
DEFAULT_DAYS = 7
MAX_DAYS = 366
NOT_ALLOWED = "Only an admin may see everyone's usage."


def money(dollars: float) -> str:
    """'$12.34', or four decimals below a dollar ('$0.0042'): small runs cost fractions of a cent."""
    return f"${dollars:,.2f}" if dollars >= 1 else f"${dollars:.4f}"


def who(user: str | None) -> str:
    return NO_LOGIN if user is None else user


def chosen_user(value: Any) -> str | None:
    """The user filter's value: None for everyone."""
    name = inputs.text(value, "user").strip()
    return None if name in ("", EVERYONE) else name


def select(rows: Sequence[DailyUsage], user: str | None) -> list[DailyUsage]:
    """The rows of `user` (NO_LOGIN: the runs without a login); all of them for None."""
    return list(rows) if user is None else [row for row in rows if who(row.user) == user]


def table_rows(rows: Sequence[DailyUsage]) -> list[list[Any]]:
    """One table row per user and day, newest day first (as the store orders them)."""
    return [[row.day.isoformat(), who(row.user), row.runs, money(row.cost_usd), row.unpriced, row.running]
            for row in rows]


def summary(rows: Sequence[DailyUsage], days: int, user: str | None) -> str:
    """'Last 7 days (UTC), everyone: 12 runs, $0.4200 · ann: 8 runs, $0.3000 · bob: …' (Markdown)."""
    span = "today (UTC)" if days == 1 else f"last {days} days (UTC)"
    whom = "everyone" if user is None else escape_markdown(user)
    if not rows:
        return f"No runs {span}, {whom}."
    totals: dict[str, list[float]] = {}
    for row in rows:
        total = totals.setdefault(who(row.user), [0, 0.0, 0, 0])
        total[0] += row.runs
        total[1] += row.cost_usd
        total[2] += row.unpriced
        total[3] += row.running

    def part(name: str, runs: float, spent: float, unpriced: float, running: float) -> str:
        notes = [f"{int(unpriced)} cost unknown"] if unpriced else []
        notes += [f"{int(running)} running"] if running else []
        extra = f" ({', '.join(notes)})" if notes else ""
        return f"**{escape_markdown(name)}**: {int(runs)} run{'s' if runs != 1 else ''}, {money(spent)}{extra}"

    overall = [sum(t[i] for t in totals.values()) for i in range(4)]
    head = f"{span[0].upper()}{span[1:]}, {whom}: " + part("all", *overall).split(": ", 1)[1]
    if len(totals) == 1:
        return head
    return head + "\n\n" + " · ".join(part(name, *totals[name]) for name in sorted(totals))


class UsageHandlers:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def refresh(self, days: float | None = DEFAULT_DAYS, user: str | None = None,
                      request: gr.Request | None = None) -> tuple[Any, Any, Any]:
        """Runs and spend per user per UTC day for the last `days` days (today included), every
        user's or only `user`'s. Admins only (a role that may see everyone's usage): anyone else
        gets an error. Outputs: summary, table, user filter."""
        service = self.context.service
        try:
            allowed = service.may_see_usage(login(request))
        except UsageError:  # a login the accounts no longer know
            allowed = False
        if not allowed:
            log.info("refused the usage view to %s", login(request))
            raise gr.Error(NOT_ALLOWED, print_exception=False)
        try:
            count = inputs.whole_number(days, "days", low=1, high=MAX_DAYS) or DEFAULT_DAYS
            picked = chosen_user(user)
        except UsageError as error:
            return f"⚠ {escape_markdown(error.message)}", gr.skip(), gr.skip()
        try:
            rows = await service.usage(days=count)
        except Exception:  # a store that fails: say so in the tab, the traceback in the log
            log.exception("could not read the usage")
            return "⚠ The usage could not be read from the run store; the server log has the details.", \
                gr.skip(), gr.skip()
        users = sorted({who(row.user) for row in rows})
        if picked is not None and picked not in users:
            users.append(picked)
        shown = select(rows, picked)
        table = {"headers": HEADERS, "data": table_rows(shown)}
        return summary(shown, count, picked), table, gr.update(choices=[EVERYONE, *users])


@dataclass
class UsageView:
    handlers: UsageHandlers
    days: gr.Number
    user: gr.Dropdown
    summary: gr.Markdown
    table: gr.Dataframe

    @property
    def outputs(self) -> list[gr.components.Component]:
        return [self.summary, self.table, self.user]

    def refresh_on(self, *triggers: Any) -> None:
        """Show the figures again on these triggers (e.g. the tab's `select`)."""
        gr.on(list(triggers), self.handlers.refresh, inputs=[self.days, self.user], outputs=self.outputs,
              api_visibility="private", queue=False, show_progress="hidden")


def build(context: AppContext) -> UsageView:
    """Lay out the Usage tab in the current gr.Tab and wire it (`/usage` for API callers)."""
    handlers = UsageHandlers(context)
    gr.Markdown("Runs and spend per user per UTC day, from the run store (what `llmtool usage` prints).")
    with gr.Row(equal_height=True):
        days = gr.Number(DEFAULT_DAYS, minimum=1, maximum=MAX_DAYS, precision=0, label="Days",
                         info="The last N days, today included.", elem_id="usage-days")
        user = gr.Dropdown([EVERYONE], value=EVERYONE, label="User", allow_custom_value=True,
                           elem_id="usage-user")
        refresh = gr.Button("Refresh", variant="primary", elem_id="usage-refresh", scale=0, min_width=120)
    summary_line = gr.Markdown("", elem_id="usage-summary")
    table = gr.Dataframe(headers=HEADERS, value=None, datatype="str", interactive=False, wrap=True,
                         max_height=520, elem_id="usage-table", label="Runs and spend per user per day")
    view = UsageView(handlers, days, user, summary_line, table)
    gr.on([refresh.click, days.submit, user.input], handlers.refresh, inputs=[days, user], outputs=view.outputs,
          api_name="usage", queue=False, show_progress="hidden")
    return view
