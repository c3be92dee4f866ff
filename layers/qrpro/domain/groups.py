"""Groups (docs/api.md section 8): the request bodies and their field rules.

A group's name is unique within its scope, compared case-insensitively after
trimming (the ``GROUPNAME#{lower(name)}`` claim item makes that a conditional
write). See docs/teams-and-groups.md for the decisions docs/api.md leaves open.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from qrpro.domain.bodies import RequestBody

NAME_MAX = 100
DESCRIPTION_MAX = 500
MAX_CODE_IDS = 1000
COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
def name_key(name: str) -> str:
    """What makes two names the same: trimmed, case-folded."""
    return name.strip().lower()


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > NAME_MAX:
        raise ValueError(f"must be at most {NAME_MAX} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _color(value: str | None) -> str | None:
    if value is not None and not COLOR_RE.match(value):
        raise ValueError('must be a colour "#RRGGBB" or null')
    return value


class GroupCreate(RequestBody):
    """Body of POST /api/groups."""

    name: Annotated[str, Field(description="1-100 characters, unique in the scope (case-insensitive)")]
    description: Annotated[str | None, Field(max_length=DESCRIPTION_MAX)] = None
    color: Annotated[str | None, Field(description='"#RRGGBB"', examples=["#1A2B3C"])] = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        return _name(v)

    @field_validator("color")
    @classmethod
    def _check_color(cls, v: str | None) -> str | None:
        return _color(v)


class GroupPatch(RequestBody):
    """Body of PATCH /api/groups/{id}: any of the three fields."""

    name: Annotated[str | None, Field(description="1-100 characters, unique in the scope")] = None
    description: Annotated[str | None, Field(max_length=DESCRIPTION_MAX)] = None
    color: Annotated[str | None, Field(description='"#RRGGBB" or null')] = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str | None) -> str:
        if v is None:
            raise ValueError("must not be null")
        return _name(v)

    @field_validator("color")
    @classmethod
    def _check_color(cls, v: str | None) -> str | None:
        return _color(v)


class GroupCodes(RequestBody):
    """Body of POST /api/groups/{id}/codes."""

    code_ids: Annotated[list[Annotated[str, Field(max_length=64)]],
                        Field(min_length=1, max_length=MAX_CODE_IDS,
                              description="codes of the scope to move into the group (from any other group)")]


def changes_of(body: GroupCreate | GroupPatch) -> dict[str, str | None]:
    """The fields the client sent, with a null description stored as ""."""
    out: dict[str, str | None] = body.model_dump(exclude_unset=True)
    if "description" in out and out["description"] is None:
        out["description"] = ""
    return out
