"""Response models: the API's objects (docs/api.md) as the OpenAPI document
shows them. Routes name them in ``errors(..., ok=Model)``; they
document, they do not validate (the routes return plain dicts built by the
data layer). Extra properties are allowed: documentation, not a filter.
Their schemas are built when the document is (``defer_build``), not at every
cold start of the api function."""

from __future__ import annotations

from typing import Any, cast

from pydantic import ConfigDict, Field, JsonValue

from qrpro.api.openapi import Documented
from qrpro.domain.codes import CodeStatus, FrameStyle, HistoryField, LogoKey
from qrpro.domain.plans import PlanName, PlanStatus
from qrpro.domain.routing_model import Routing
from qrpro.domain.scope import Role, ScopeType
from qrpro.domain.webhooks import DeliveryEventType, EventType

_CODE_EXAMPLE = {
    "id": "0b7c52d4-3f5e-4d3a-9a43-2f1f0c9b8e11", "shortcode": "aBc123x", "short_url": "https://aqr.net/aBc123x",
    "url": "https://example.com/landing", "label": "Q2 campaign", "tag": "q2,print", "qr_type": "url",
    "style_json": '{"dark": "#1A2B3C"}', "logo_key": "instagram", "frame_style": "scan-me",
    "frame_text": "SCAN ME", "group_id": None, "status": "active", "grace_until": None, "scans_30d": 1245,
    "created_at": 1713288000, "updated_at": 1713370000, "routing": None,
}
_GROUP_EXAMPLE = {
    "id": "5d0f2a8e-6c1b-4b7e-8f3a-9e2d1c4b5a67", "name": "Print", "description": "Posters and flyers",
    "color": "#1A2B3C", "code_count": 12, "created_at": 1713288000, "updated_at": 1713370000,
}
_WEBHOOK_EXAMPLE = {
    "id": "7f3e9b1c-2d4a-4e8f-a6b5-c0d1e2f3a4b5", "url": "https://hooks.example.com/qr",
    "events": ["code.created", "code.updated"], "description": "CRM sync", "active": True,
    "created_at": 1713288000, "updated_at": 1713288000, "failure_count": 0,
}
_DELIVERY_EXAMPLE = {
    "id": "c2a1e4f0-9b8d-4c7e-a6f5-1d2e3f4a5b6c", "event_id": "e1d2c3b4-a5f6-4e7d-8c9b-0a1b2c3d4e5f",
    "event_type": "code.updated", "attempt": 1, "status_code": 200, "error": None, "duration_ms": 184,
    "at": 1713370001, "next_retry_at": None,
}


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": cast(list[JsonValue], list(examples))})


# -- codes (docs/api.md section 6) ---------------------------------------------------------------

class Scope(Documented):
    """Whose data a request works on: the user's own, or a team's."""

    model_config = _examples({"type": "user"}, {"type": "team", "team_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                                                "role": "admin"})

    type: ScopeType
    team_id: str | None = Field(None, description="team context only")
    role: Role | None = Field(None, description="the caller's role in the team (team context only)")


class Code(Documented):
    """A dynamic code."""

    model_config = _examples(_CODE_EXAMPLE)

    id: str
    shortcode: str = Field(description="7 Base58 characters, unique platform-wide")
    short_url: str = Field(description="the redirect URL encoded in the dynamic QR code")
    url: str = Field(description="where the redirect sends the scanner")
    label: str
    tag: str = Field(description="comma-separated tags, as given after trimming")
    qr_type: str
    style_json: str | None = Field(description="a JSON object as a string: dark, light, error, scale, border")
    logo_key: LogoKey | None
    frame_style: FrameStyle
    frame_text: str
    group_id: str | None
    status: CodeStatus
    grace_until: int | None = Field(description="unix seconds when a `grace` code expires")
    scans_30d: int = Field(description="scans over the last 30 UTC days, today included")
    created_at: int
    updated_at: int
    routing: Routing | None = Field(description="where each scan goes (docs/analytics.md, Routing); null: always `url`")


class CodeList(Documented):
    """One page of the scope's codes, newest first."""

    model_config = _examples({"codes": [_CODE_EXAMPLE], "plan": "business", "plan_limit": 500,
                              "scope": {"type": "user"}, "next_cursor": None})

    codes: list[Code]
    plan: PlanName
    plan_limit: int = Field(description="the plan's cap on active + paused codes")
    scope: Scope
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last one")


class HistoryEntry(Documented):
    model_config = ConfigDict(populate_by_name=True)

    at: int
    field: HistoryField = Field(
        description="`created` (the last entry: `from` null, `to` the first url), `url`, `status` or `routing` "
                    "(`from`/`to` the routing objects, null when there was or is none)")
    from_: str | Routing | None = Field(alias="from")
    to: str | Routing | None
    by: str = Field(description="user id, or `system` for the expiry job")


class History(Documented):
    """Destination and status changes, newest first."""

    model_config = _examples({"history": [
        {"at": 1713380000, "field": "routing", "from": None,
         "to": {"expires_at": 1769904000, "fallback_url": "https://example.com/campaign-ended"},
         "by": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"},
        {"at": 1713370000, "field": "url", "from": "https://example.com/old", "to": "https://example.com/landing",
         "by": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"}]})

    history: list[HistoryEntry]


class ImportResult(Documented):
    """The codes an import created, in input order."""

    model_config = _examples({"codes": [_CODE_EXAMPLE], "count": 1})

    codes: list[Code]
    count: int


class BulkFailure(Documented):
    id: str
    error: str = Field(description="the error code the single-code operation would answer (e.g. not_found)")


class BulkResult(Documented):
    """What a bulk action applied, and what it could not."""

    model_config = _examples({"updated": ["0b7c52d4-3f5e-4d3a-9a43-2f1f0c9b8e11"],
                              "failed": [{"id": "1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b", "error": "not_found"}]})

    updated: list[str]
    failed: list[BulkFailure]


# -- groups (section 8) ------------------------------------------------------------------------

class Group(Documented):
    model_config = _examples(_GROUP_EXAMPLE)

    id: str
    name: str
    description: str
    color: str | None = Field(description='"#RRGGBB" or null')
    code_count: int
    created_at: int
    updated_at: int


class GroupDetail(Group):
    """A group with the ids of its codes (newest first)."""

    model_config = _examples({**_GROUP_EXAMPLE, "code_count": 1, "code_ids": [_CODE_EXAMPLE["id"]]})

    code_ids: list[str]


class GroupDeleted(Group):
    """The deleted group as it was last, and the codes it ungrouped."""

    model_config = _examples({**_GROUP_EXAMPLE, "code_count": 0, "deleted": True,
                              "ungrouped_code_ids": [_CODE_EXAMPLE["id"]]})

    deleted: bool
    ungrouped_code_ids: list[str]


class GroupList(Documented):
    model_config = _examples({"groups": [_GROUP_EXAMPLE]})

    groups: list[Group]


# -- teams (section 9) --------------------------------------------------------------------------

class Team(Documented):
    model_config = _examples({"id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "name": "Marketing", "plan": "team",
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
    model_config = _examples({"members": [{"user_id": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a",
                                           "email": "ana@example.com", "role": "owner", "joined_at": 1713288000}]})

    members: list[Member]


# -- webhooks (section 10) ----------------------------------------------------------------------

class Webhook(Documented):
    model_config = _examples(_WEBHOOK_EXAMPLE)

    id: str
    url: str
    events: list[EventType]
    description: str
    active: bool
    created_at: int
    updated_at: int
    failure_count: int = Field(description="events failed in a row; 20 disable the webhook")


class WebhookCreated(Webhook):
    """The new webhook with its signing secret, shown only this once."""

    model_config = _examples({**_WEBHOOK_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})

    secret: str = Field(description="`whsec_...`: verifies the `webhook-signature` header (Standard Webhooks)")


class WebhookDeleted(Documented):
    model_config = _examples({"id": _WEBHOOK_EXAMPLE["id"], "deleted": True})

    id: str
    deleted: bool


class WebhookList(Documented):
    webhooks: list[Webhook]


class Delivery(Documented):
    """One delivery attempt."""

    model_config = _examples(_DELIVERY_EXAMPLE)

    id: str
    event_id: str
    event_type: DeliveryEventType
    attempt: int
    status_code: int | None = Field(description="the target's answer; null when none came (timeout, refused)")
    error: str | None
    duration_ms: int | None
    at: int
    next_retry_at: int | None = Field(description="when the next attempt is due; null when done")


class DeliveryList(Documented):
    deliveries: list[Delivery]


class Secret(Documented):
    model_config = _examples({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})

    secret: str


# -- user and keys (section 11) -----------------------------------------------------------------

class Limits(Documented):
    codes: int
    requests_per_day: int
    scans_per_month: int
    retention_days: int
    hourly_analytics: bool


class User(Documented):
    model_config = _examples({"id": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a", "email": "ana@example.com",
                              "plan": "business", "plan_status": "active", "scope": {"type": "user"},
                              "current_team_id": None,
                              "limits": {"codes": 500, "requests_per_day": 1000, "scans_per_month": 1000000,
                                         "retention_days": 730, "hourly_analytics": False}})

    id: str
    email: str
    plan: PlanName
    plan_status: PlanStatus
    scope: Scope
    current_team_id: str | None
    limits: Limits


class RequestsToday(Documented):
    used: int
    limit: int
    reset_at: int = Field(description="unix seconds of the next UTC midnight")


class CodesUsed(Documented):
    used: int = Field(description="active + paused codes")
    limit: int


class ScansThisMonth(Documented):
    used: int
    cap: int
    month: str = Field(description="YYYY-MM (UTC)")


class Usage(Documented):
    model_config = _examples({"requests_today": {"used": 12, "limit": 1000, "reset_at": 1713398400},
                              "codes": {"used": 42, "limit": 500},
                              "scans_this_month": {"used": 5210, "cap": 1000000, "month": "2026-11"}})

    requests_today: RequestsToday
    codes: CodesUsed
    scans_this_month: ScansThisMonth


class Key(Documented):
    id: str
    label: str
    prefix: str = Field(description="the first 16 characters of the token")
    created_at: int
    last_used_at: int | None


class KeyList(Documented):
    """The caller's keys, newest first: never a token nor its hash."""

    model_config = _examples({"keys": [{"id": "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", "label": "CI",
                                        "prefix": "abnd_qrpro_Xy7Qa", "created_at": 1713288000,
                                        "last_used_at": 1713370000}],
                              "allowed": True, "plan": "business"})

    keys: list[Key]
    allowed: bool = Field(description="whether the plan includes the API")
    plan: PlanName


class KeyRevoked(Documented):
    model_config = _examples({"id": "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", "revoked": True})

    id: str
    revoked: bool

