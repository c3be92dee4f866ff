"""Codes: shortcodes, field rules, the status machine (docs/api.md section 6)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_serializer, field_validator
from typing_extensions import TypeAliasType

from qrpro.domain.bodies import RequestBody
from qrpro.domain.routing_model import Routing, RoutingField
from qrpro.domain.shortcodes import BASE58, SHORTCODE_LEN
from qrpro.domain.statuses import Status  # re-exported: the data layer and services read it from here
from qrpro.domain.urls import MAX_URL, check_url

SHORTCODE_RE = re.compile(f"^[{BASE58}]{{{SHORTCODE_LEN}}}$")
GRACE_SECONDS = 90 * 86_400

# Named types: each becomes one shared schema of the OpenAPI document (docs/api.md section 12).
LogoKey = TypeAliasType("LogoKey", Literal["link", "email", "phone", "wifi", "pdf", "menu", "instagram", "facebook",
                                           "linkedin", "x", "youtube", "whatsapp"])
FrameStyle = TypeAliasType("FrameStyle", Literal["none", "scan-me", "banner-top", "banner-bottom"])
CodeStatus = TypeAliasType("CodeStatus", Literal["active", "paused", "grace", "expired"])
EditableStatus = TypeAliasType("EditableStatus", Literal["active", "paused"])
HistoryField = TypeAliasType("HistoryField", Literal["created", "url", "status", "routing"])  # history entries (6.8)
BulkAction = TypeAliasType("BulkAction", Literal["pause", "resume", "delete", "move"])


EDITABLE = frozenset({Status.ACTIVE, Status.PAUSED})  # also: what counts toward the plan cap


def new_shortcode(choice: Callable[[str], str] = secrets.choice) -> str:
    """7 Base58 characters from a cryptographic source (~41 bits)."""
    return "".join(choice(BASE58) for _ in range(SHORTCODE_LEN))


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


DEFAULTS: dict[str, Any] = {"label": "", "tag": "", "qr_type": "url", "style_json": None, "logo_key": None,
                            "frame_style": "none", "frame_text": "", "group_id": None, "routing": None}
NON_NULL_TEXT = ("label", "tag", "frame_text")  # null means "" for these


def normalise(fields: dict[str, Any]) -> dict[str, Any]:
    """Explicit nulls on text fields become "", a null qr_type/frame_style the default."""
    out = dict(fields)
    for name in NON_NULL_TEXT:
        if name in out and out[name] is None:
            out[name] = ""
    for name in ("qr_type", "frame_style"):
        if name in out and out[name] is None:
            out[name] = DEFAULTS[name]
    return out


def routing_text(stored: dict[str, Any]) -> str:
    """The stored form of ``routing`` as the code and SHORT# items hold it: compact JSON text."""
    return json.dumps(stored, separators=(",", ":"))


def routing_object(text: str | None) -> dict[str, Any] | None:
    """The ``routing`` of the code object (and of history) from its stored text."""
    return None if text is None else dict(json.loads(text))


def tags_of(tag: str) -> set[str]:
    return {t.strip().lower() for t in (tag or "").split(",") if t.strip()}


def matches(code: dict[str, Any], *, status: str | None, tag: str | None, group_id: str | None,
            q: str | None) -> bool:
    if status and code["status"] != status:
        return False
    if group_id and code.get("group_id") != group_id:
        return False
    if tag and tag.strip().lower() not in tags_of(code.get("tag", "")):
        return False
    if q:
        needle = q.lower()
        hay = (code.get("label") or "", code.get("url") or "", code.get("shortcode") or "")
        if not any(needle in h.lower() for h in hay):
            return False
    return True
