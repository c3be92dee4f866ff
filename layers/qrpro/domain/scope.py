"""Who is calling and on whose data: the caller, its scope and its role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from typing_extensions import TypeAliasType

from qrpro.domain.errors import InsufficientRole
from qrpro.domain.plans import Plan, PlanStatus, plan

ROLES = ("owner", "admin", "member")
Role = TypeAliasType("Role", Literal["owner", "admin", "member"])  # ROLES, as a named schema
ScopeType = TypeAliasType("ScopeType", Literal["user", "team"])
MUTATING_ROLES = frozenset({"owner", "admin"})


def user_scope(user_id: str) -> str:
    return f"USER#{user_id}"


def team_scope(team_id: str) -> str:
    return f"TEAM#{team_id}"


@dataclass(frozen=True)
class Caller:
    """The authenticated request: the key's user, and the scope it acts on.

    ``scope`` is the partition that owns the data (``USER#id`` or ``TEAM#id``);
    in team context ``plan``/``plan_status`` are the team's, ``role`` the
    user's role in that team.
    """

    user_id: str
    key_id: str
    email: str
    scope: str
    plan_name: str
    plan_status: str
    team_id: str | None = None
    team_name: str | None = None
    role: str | None = None

    @property
    def plan(self) -> Plan:
        return plan(self.plan_name)

    @property
    def expired(self) -> bool:
        return self.plan_status == PlanStatus.EXPIRED

    def scope_json(self) -> dict[str, Any]:
        if self.team_id is None:
            return {"type": "user"}
        return {"type": "team", "team_id": self.team_id, "role": self.role}

    def require_mutation(self) -> None:
        """Every mutation of codes, groups and webhooks goes through here."""
        if self.team_id is not None and self.role not in MUTATING_ROLES:
            raise InsufficientRole(role=self.role or "member", required="admin")
