"""Groups (docs/api.md section 8)."""

from __future__ import annotations

from pydantic import Field

from qrpro.api.models.base import Documented, examples
from qrpro.api.models.codes import CODE_EXAMPLE

GROUP_EXAMPLE = {
    "id": "5d0f2a8e-6c1b-4b7e-8f3a-9e2d1c4b5a67", "name": "Print", "description": "Posters and flyers",
    "color": "#1A2B3C", "code_count": 12, "created_at": 1713288000, "updated_at": 1713370000,
}


class Group(Documented):
    model_config = examples(GROUP_EXAMPLE)

    id: str
    name: str
    description: str
    color: str | None = Field(description='"#RRGGBB" or null')
    code_count: int
    created_at: int
    updated_at: int


class GroupDetail(Group):
    """A group with the ids of its codes (newest first)."""

    model_config = examples({**GROUP_EXAMPLE, "code_count": 1, "code_ids": [CODE_EXAMPLE["id"]]})

    code_ids: list[str]


class GroupDeleted(Group):
    """The deleted group as it was last, and the codes it ungrouped."""

    model_config = examples({**GROUP_EXAMPLE, "code_count": 0, "deleted": True,
                              "ungrouped_code_ids": [CODE_EXAMPLE["id"]]})

    deleted: bool
    ungrouped_code_ids: list[str]


class GroupList(Documented):
    model_config = examples({"groups": [GROUP_EXAMPLE]})

    groups: list[Group]
