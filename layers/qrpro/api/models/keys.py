"""API keys (docs/api.md section 11)."""

from __future__ import annotations

from pydantic import Field

from qrpro.api.models.base import Documented, examples
from qrpro.domain.plans import PlanName


class Key(Documented):
    id: str
    label: str
    prefix: str = Field(description="the first 16 characters of the token")
    created_at: int
    last_used_at: int | None


class KeyList(Documented):
    """The caller's keys, newest first: never a token nor its hash."""

    model_config = examples({"keys": [{"id": "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", "label": "CI",
                                        "prefix": "abnd_qrpro_Xy7Qa", "created_at": 1713288000,
                                        "last_used_at": 1713370000}],
                              "allowed": True, "plan": "business"})

    keys: list[Key]
    allowed: bool = Field(description="whether the plan includes the API")
    plan: PlanName


class KeyRevoked(Documented):
    model_config = examples({"id": "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", "revoked": True})

    id: str
    revoked: bool
