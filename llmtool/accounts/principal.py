"""Who is asking, and what their role lets them do: the one answer every surface and the service share.

    who = Principal(user="ann", role="partner", policy=settings.roles["partner"])
    who.may_use_model("openai:gpt-4.1-mini")     # the role's `models` globs
    who.may_use_template("classify")             # the role's `templates` globs

Without logins there is no principal (None): the single local user may do everything, unlimited.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from llmtool.settings import RolePolicy


@dataclass(frozen=True)
class Principal:
    user: str
    role: str
    policy: RolePolicy

    @property
    def sees_all_runs(self) -> bool:
        return self.policy.see_all_runs

    def may_use_model(self, model_id: str) -> bool:
        return any(fnmatchcase(model_id, pattern) for pattern in self.policy.models)

    def may_use_template(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self.policy.templates)
