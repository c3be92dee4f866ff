"""The request bodies of codes (docs/api.md section 6): create, import item and
patch, with their field rules. The vocabulary they use is ``qrpro.domain.codes``."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, field_serializer, field_validator

from qrpro.domain.bodies import RequestBody
from qrpro.domain.codes import EditableStatus, FrameStyle, LogoKey, routing_text
from qrpro.domain.routing_model import Routing, RoutingField
from qrpro.domain.urls import MAX_URL, check_url


def _style_text(value: Any) -> Any:
    """``style_json`` sent as the object itself: stored as its compact JSON text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if isinstance(value, dict) else value


def _style(value: str | None) -> str | None:
    if value is None:
        return None
    from qrpro.domain.style import parse_style_json

    parse_style_json(value)
    return value


StyleJson = Annotated[str | None, BeforeValidator(_style_text), WithJsonSchema({
    "anyOf": [{"type": "object"}, {"type": "string"}, {"type": "null"}],
    "description": "a JSON object (dark, light, error, scale, border), as a string or as the object itself; "
                   "stored and returned as the string; at most 8 KiB"})]


class _Fields(RequestBody):
    """Optional fields shared by create, import and patch."""

    label: Annotated[str | None, Field(max_length=200)] = None
    tag: Annotated[str | None, Field(max_length=500)] = None
    qr_type: Annotated[str | None, Field(max_length=32, pattern=r"^[a-z_]+$")] = None
    style_json: StyleJson = None
    logo_key: LogoKey | None = None
    frame_style: FrameStyle | None = None
    frame_text: Annotated[str | None, Field(max_length=40)] = None
    group_id: str | None = None
    routing: RoutingField = None

    @field_validator("tag")
    @classmethod
    def _trim_tag(cls, v: str | None) -> str | None:
        return None if v is None else v.strip()

    @field_validator("style_json")
    @classmethod
    def _check_style(cls, v: str | None) -> str | None:
        return _style(v)

    @field_validator("group_id")
    @classmethod
    def _check_group(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9a-f-]{36}", v):
            raise ValueError("must be a group id (UUID) or null")
        return v

    @field_serializer("routing")
    def _stored_routing(self, v: Routing | None) -> str | None:
        """Dumped as the stored form: compact JSON text (docs/data-model.md), None when there is none."""
        return None if v is None else routing_text(v.to_stored())


class CodeCreate(_Fields):
    """Body of POST /api/codes and one item of an import."""

    url: Annotated[str, Field(max_length=MAX_URL, description="absolute http(s) destination")]

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        return check_url(v)


class CodePatch(_Fields):
    """Body of PATCH /api/codes/{id}: any mutable field."""

    url: Annotated[str | None, Field(max_length=MAX_URL)] = None
    status: EditableStatus | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is None:
            raise ValueError("must be an absolute http or https URL (url cannot be null)")
        return check_url(v)

    @field_validator("status")
    @classmethod
    def _check_status(cls, v: str | None) -> str | None:
        if v is None:
            raise ValueError("must be active or paused (status cannot be null)")
        return v
