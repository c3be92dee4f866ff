"""What the response models share: examples in their schemas, and the scope
several answers name."""

from __future__ import annotations

from typing import Any, cast

from pydantic import ConfigDict, Field, JsonValue

from qrpro.api.openapi import Documented
from qrpro.domain.scope import Role, ScopeType


def examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": cast(list[JsonValue], list(examples))})


class Scope(Documented):
    """Whose data a request works on: the user's own, or a team's."""

    model_config = examples({"type": "user"}, {"type": "team", "team_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                                                "role": "admin"})

    type: ScopeType
    team_id: str | None = Field(None, description="team context only")
    role: Role | None = Field(None, description="the caller's role in the team (team context only)")
