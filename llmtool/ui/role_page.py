"""The page fitted to the login's role on load: one event, after the page (built for everyone) arrives.

    page = RolePage(context, chat_handlers, chat_template=…, prompt=…, …)
    page.wire(demo)

For each login (`roles.Access`):
- every template picker lists only the templates the role may use (Chat's, Compare's four, Evaluate's,
  History's filter); a pick the role may not use moves to its first allowed one;
- a role without prompts of its own (`free_prompts = false`) gets no prompt box and no system prompt
  in Chat, but a sentence saying it runs templates only, and Chat's picker starts on its first template;
- Evaluate's upload is hidden from a role that may not upload;
- the Usage tab is shown only to a role that may see everyone's usage;
- the line under Chat's status says what the login spent of its role's budgets.

Nothing here is a permission: the service refuses what a role may not do on every surface, and the
Usage tab's handler asks it again. Evaluate's picker and upload are found by their elem_id (its
module builds them and returns only its model picker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from llmtool.ui.handlers import ChatHandlers
from llmtool.ui.history_handlers import ANY
from llmtool.ui.roles import Access, login, templates_only
from llmtool.ui.template_fields import NONE, chosen
from llmtool.ui.template_panel import choices, describe


@dataclass
class RolePage:
    handlers: ChatHandlers
    chat_template: gr.Dropdown
    chat_info: gr.Markdown
    prompt: gr.Textbox
    system: gr.Textbox
    send: gr.Button
    note: gr.Markdown  # "runs templates only" (hidden for everyone else)
    spend: gr.Markdown
    compare_templates: list[gr.Dropdown]
    history_templates: gr.Dropdown
    usage_tab: gr.Tab
    eval_template: gr.Dropdown | None = None
    eval_upload: gr.components.Component | None = None

    @property
    def pickers(self) -> list[gr.Dropdown]:
        """The pickers whose value may have to move (their values are the event's inputs)."""
        return [self.chat_template, *self.compare_templates, *([self.eval_template] if self.eval_template else [])]

    @property
    def outputs(self) -> list[Any]:
        extra = [c for c in (self.eval_upload,) if c is not None]
        return [*self.pickers, self.chat_info, self.prompt, self.system, self.send, self.note, self.spend,
                self.history_templates, self.usage_tab, *extra]

    def wire(self, demo: gr.Blocks) -> None:
        demo.load(self.fit, inputs=self.pickers, outputs=self.outputs, queue=False, show_progress="hidden",
                  api_visibility="private")

    async def fit(self, request: gr.Request, *values: Any) -> dict[Any, Any]:
        """Every output fitted to the request's login (`values`: the pickers' values, as `pickers`).

        A picker's value is set only when it must move (the role may not use it): the user may have
        picked another since the page load fired, and this answer would undo that pick."""
        context = self.handlers.context
        access = Access.of(context, login(request))
        listed = choices(context, with_none=False, access=access)
        chat_value, *others = values
        chat_listed = self.handlers.template_choices(access)
        chat_to = _moved(chat_value, chat_listed, NONE if access.free_prompts else None)
        updates: dict[Any, Any] = {
            self.chat_template: _listing(chat_listed, chat_to),
            self.history_templates: gr.update(choices=[ANY, *(name for _, name in listed)]),
            self.usage_tab: gr.update(visible=access.usage),
            self.spend: await self.handlers.spend(request),
            # With logins the page was built with no template's problems: those of this role's now.
            self.chat_info: describe(context, chat_to or chat_value, access=access).info
            if access.logins and (chat_to is not None or chosen(chat_value) is None) else gr.skip(),
        }
        for picker, value in zip(self.pickers[1:], others, strict=True):
            updates[picker] = _listing(listed, _moved(value, listed, None))
        if access.free_prompts:
            updates.update({self.prompt: gr.skip(), self.system: gr.skip(), self.send: gr.skip(),
                            self.note: gr.update(visible=False)})
        else:
            updates.update({self.prompt: gr.update(visible=False), self.system: gr.update(visible=False),
                            self.send: gr.update(visible=False),
                            self.note: gr.update(value=templates_only(access, len(chat_listed)), visible=True)})
        if self.eval_upload is not None:
            updates[self.eval_upload] = gr.update(visible=access.uploads)
        return updates


def _listing(listed: list[tuple[str, str]], to: str | None) -> Any:
    return gr.update(choices=listed) if to is None else gr.update(choices=listed, value=to)


def _moved(value: Any, listed: list[tuple[str, str]], otherwise: str | None) -> str | None:
    """Where a picker showing `value` must move to: None when it may stay (one of `listed`), else
    `otherwise` when given, else the first of `listed` (None when nothing is listed: it stays)."""
    offered = [v for _, v in listed]
    if isinstance(value, str) and value in offered:
        return None
    if otherwise is not None:
        return otherwise if value != otherwise else None
    return offered[0] if offered else None
