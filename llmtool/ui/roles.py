"""What a login's role changes on the page: the page is built once for everyone, then fitted on load.

    access = Access.of(context, "pat")             # the login's role (`context.principal`)
    access.templates(["trip", "secret-plan"])      # → ["trip"]: those the role may use, in order
    access.free_prompts, access.uploads, access.usage

    current_login()                                # the login of the Gradio event being handled

A hidden input is not a permission. The service checks every run again (models, templates, prompts of
one's own, limits, budgets) and the Usage tab's handlers ask `service.may_see_usage` themselves: this
module only keeps the page from offering what would be refused, and from showing a template (its
fields, its rendered prompt) to a role that may not use it.

Without logins everything is offered. With logins, a login the accounts no longer know is offered
nothing (its next run is refused by the service anyway).

`current_login()` reads the request Gradio keeps in a context variable while a handler runs (in the
handler's thread too), so a list built by a handler that does not pass its request on (Evaluate's ↻
calls `template_panel.choices`) still offers only the role's templates. Outside an event (the page
being built) there is no login: with logins the page is built offering no template at all (its
config names none), and each login's page load fills in what its role may use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr
from gradio.context import LocalContext

from llmtool.errors import PermissionDeniedError
from llmtool.service.limits import T

if TYPE_CHECKING:
    from llmtool.accounts.principal import Principal
    from llmtool.web.context import AppContext


def login(request: gr.Request | None) -> str | None:
    """The login name of the request's user; None without logins."""
    name = getattr(request, "username", None) if request is not None else None
    return name if isinstance(name, str) else None


def current_login() -> str | None:
    """The login of the Gradio event being handled; None outside an event or without logins."""
    return login(LocalContext.request.get(None))


@dataclass(frozen=True)
class Access:
    """What the page offers one login. `principal` None: no logins (everything) when `logins` is
    False, else a login nobody knows (nothing)."""

    user: str | None
    logins: bool
    principal: Principal | None

    @classmethod
    def of(cls, context: AppContext, user: str | None) -> Access:
        if context.auth is None:
            return cls(user, False, None)
        return cls(user, True, context.principal(user) if user else None)

    @classmethod
    def current(cls, context: AppContext) -> Access:
        """For the login of the event being handled (`current_login`). Outside an event (the page
        being built) there is none: without logins that is everything, with logins nothing."""
        return cls.of(context, current_login())

    @property
    def everything(self) -> bool:
        return not self.logins

    @property
    def role(self) -> str | None:
        return self.principal.role if self.principal is not None else None

    def may_use_template(self, name: str) -> bool:
        if self.everything:
            return True
        return self.principal is not None and self.principal.may_use_template(name)

    def check_template(self, name: str) -> None:
        """Refuse (`PermissionDeniedError`) a template the role may not use, before its file is read:
        what stops it rendering (its variables, its path) is none of that login's business either."""
        if not self.may_use_template(name):
            raise PermissionDeniedError(refused_template(self, name))

    def templates(self, items: Iterable[T]) -> list[T]:
        """The templates (names, or objects with a `name`) the role may use, in order."""
        return [item for item in items if self.may_use_template(item if isinstance(item, str) else item.name)]

    @property
    def free_prompts(self) -> bool:
        """May send prompts of their own (else only templates)."""
        return self.everything or (self.principal is not None and self.principal.policy.free_prompts)

    @property
    def uploads(self) -> bool:
        return self.everything or (self.principal is not None and self.principal.policy.uploads)

    @property
    def usage(self) -> bool:
        """May see every user's usage (the Usage tab)."""
        return self.everything or (self.principal is not None and self.principal.policy.manage_users)


def refused_template(access: Access, name: str) -> str:
    """The sentence for a template the role may not use (the service's words for the same refusal)."""
    return f"Your role ({access.role or 'unknown'}) may not use the template {name!r}"


def templates_only(access: Access, offered: int) -> str:
    """The line shown instead of the prompt box to a role that may only run templates."""
    role = f"Your role ({access.role})" if access.role else "Your login"
    if not offered:
        return f"{role} runs templates only, and none is offered to it yet: ask an admin to allow some."
    return (f"{role} runs templates only: pick a template, fill in its fields and press Run template "
            "(prompts of your own are not sent).")
