"""What the response models share: examples in their schemas, and the scope
several answers name."""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from qrpro.domain.scope import Role, ScopeType


class Documented(BaseModel):
    """The base of the models that only document (responses): their schemas are
    built with the document (``defer_build``), not at every cold start."""

    model_config = ConfigDict(defer_build=True)


class ErrorBody(Documented):
    """The error envelope: a machine-readable `error` code plus context."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"error": "validation_error", "field": "url", "message": "must be an absolute http or https URL"}]})

    error: str = Field(description="machine-readable error code (docs/api.md section 5)")
    message: str | None = None
    field: str | None = Field(None, description="JSON path of the offending field (validation_error)")


def examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": cast(list[JsonValue], list(examples))})


class Scope(Documented):
    """Whose data a request works on: the user's own, or a team's."""

    model_config = examples({"type": "user"}, {"type": "team", "team_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                                                "role": "admin"})

    type: ScopeType
    team_id: str | None = Field(None, description="team context only")
    role: Role | None = Field(None, description="the caller's role in the team (team context only)")
