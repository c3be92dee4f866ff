"""Teams (docs/api.md section 9)."""

from __future__ import annotations

from pydantic import Field

from qrpro.api.models.base import Documented, examples
from qrpro.domain.plans import PlanName
from qrpro.domain.scope import Role


class Team(Documented):
    model_config = examples({"id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "name": "Marketing", "plan": "team",
                              "role": "admin", "member_count": 4})

    id: str
    name: str
    plan: PlanName
    role: Role
    member_count: int


class TeamList(Documented):
    teams: list[Team]
    current_team_id: str | None = Field(description="the team the API works on; null: the user's own data")


class Member(Documented):
    user_id: str
    email: str
    role: Role
    joined_at: int | None


class MemberList(Documented):
    model_config = examples({"members": [{"user_id": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a",
                                           "email": "ana@example.com", "role": "owner", "joined_at": 1713288000}]})

    members: list[Member]
