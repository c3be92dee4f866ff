"""Codes: shortcodes, field rules, the status machine (docs/api.md section 6).

The vocabulary only, free of pydantic (the export function loads no pydantic,
docs/performance.md); the request bodies are ``qrpro.domain.code_bodies``."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from typing import Any, Literal

from typing_extensions import TypeAliasType

from qrpro.domain.shortcodes import BASE58, SHORTCODE_LEN
from qrpro.domain.statuses import Status  # re-exported: the data layer and services read it from here

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
