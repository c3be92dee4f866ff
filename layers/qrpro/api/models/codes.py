"""Codes (docs/api.md section 6)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from qrpro.api.models.base import Documented, Scope, examples
from qrpro.domain.codes import CodeStatus, FrameStyle, HistoryField, LogoKey
from qrpro.domain.plans import PlanName
from qrpro.domain.routing_model import Routing

CODE_EXAMPLE = {
    "id": "0b7c52d4-3f5e-4d3a-9a43-2f1f0c9b8e11", "shortcode": "aBc123x", "short_url": "https://aqr.net/aBc123x",
    "url": "https://example.com/landing", "label": "Q2 campaign", "tag": "q2,print", "qr_type": "url",
    "style_json": '{"dark": "#1A2B3C"}', "logo_key": "instagram", "frame_style": "scan-me",
    "frame_text": "SCAN ME", "group_id": None, "status": "active", "grace_until": None, "scans_30d": 1245,
    "created_at": 1713288000, "updated_at": 1713370000, "routing": None,
}


class Code(Documented):
    """A dynamic code."""

    model_config = examples(CODE_EXAMPLE)

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

    model_config = examples({"codes": [CODE_EXAMPLE], "plan": "business", "plan_limit": 500,
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

    model_config = examples({"history": [
        {"at": 1713380000, "field": "routing", "from": None,
         "to": {"expires_at": 1769904000, "fallback_url": "https://example.com/campaign-ended"},
         "by": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"},
        {"at": 1713370000, "field": "url", "from": "https://example.com/old", "to": "https://example.com/landing",
         "by": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"}]})

    history: list[HistoryEntry]


class ImportResult(Documented):
    """The codes an import created, in input order."""

    model_config = examples({"codes": [CODE_EXAMPLE], "count": 1})

    codes: list[Code]
    count: int


class BulkFailure(Documented):
    id: str
    error: str = Field(description="the error code the single-code operation would answer (e.g. not_found)")


class BulkResult(Documented):
    """What a bulk action applied, and what it could not."""

    model_config = examples({"updated": ["0b7c52d4-3f5e-4d3a-9a43-2f1f0c9b8e11"],
                              "failed": [{"id": "1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b", "error": "not_found"}]})

    updated: list[str]
    failed: list[BulkFailure]
