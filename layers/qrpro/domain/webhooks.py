"""Webhooks (docs/api.md section 10): events, Standard Webhooks signing, the
payload, the retry schedule and the address rules that keep deliveries off
internal networks (SSRF). Pure: no network, time and randomness passed in.

Standard Webhooks (https://www.standardwebhooks.com): ``webhook-id`` (stable
across retries: the event id), ``webhook-timestamp`` (unix seconds of the
attempt), ``webhook-signature`` = space-separated ``v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``, keyed with the base64-decoded part of the
``whsec_`` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from typing_extensions import TypeAliasType

from qrpro.domain.bodies import RequestBody
from qrpro.domain.urls import MAX_URL, normalise_url

EVENT_TYPES = ("code.created", "code.updated", "code.deleted", "code.expired", "code.reactivated",
               "scans.cap_reached")
PING = "ping"  # POST /api/webhooks/{id}/test only; never subscribable
EventType = TypeAliasType("EventType", Literal["code.created", "code.updated", "code.deleted", "code.expired",
                                              "code.reactivated", "scans.cap_reached"])
DeliveryEventType = TypeAliasType("DeliveryEventType", Literal["code.created", "code.updated", "code.deleted",
                                                              "code.expired", "code.reactivated",
                                                              "scans.cap_reached", "ping"])

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret
SECRET_BYTES = 32  # the spec asks for 24 to 64
ROTATION_OVERLAP = 24 * 3600  # both secrets sign for 24 h after a rotation
BACKOFF = (5, 300, 1800, 7200, 18_000, 36_000, 36_000)  # seconds after attempt 1, 2, ... 7
JITTER = 0.1  # each delay is drawn within ±10 %
MAX_DELAY = 43_200 - 300  # SQS visibility is capped at 12 h from the receive
TIMEOUT_SECONDS = 10
MAX_CONSECUTIVE_FAILURES = 20
DELIVERY_TTL = 30 * 86_400
DELIVERIES_LISTED = 100
MAX_ERROR_BYTES = 1024

MAX_DESCRIPTION = 500
USER_AGENT = "QRPro-Webhooks/1.0"


# -- request bodies ---------------------------------------------------------------

def _events(value: list[str]) -> list[str]:
    if not value:
        raise ValueError(f"must list at least one of {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(value))  # each once, in the given order


class WebhookCreate(RequestBody):
    """Body of POST /api/webhooks."""

    url: Annotated[str, Field(max_length=MAX_URL, description="https target (http/loopback only locally)")]
    events: Annotated[list[EventType], Field(description="event types to receive; `ping` is sent by /test only")]
    description: Annotated[str | None, Field(max_length=MAX_DESCRIPTION)] = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return target_url(v)  # the scheme and addresses are checked with the settings later

    @field_validator("events")
    @classmethod
    def _check_events(cls, v: list[str]) -> list[str]:
        return _events(v)


class WebhookPatch(RequestBody):
    """Body of PATCH /api/webhooks/{id}: any of url, events, description, active."""

    url: Annotated[str | None, Field(max_length=MAX_URL)] = None
    events: list[EventType] | None = None
    description: Annotated[str | None, Field(max_length=MAX_DESCRIPTION)] = None
    active: bool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            raise ValueError("must be an https URL (url cannot be null)")
        return target_url(v)

    @field_validator("events")
    @classmethod
    def _check_events(cls, v: list[str] | None) -> list[str]:
        if v is None:
            raise ValueError("must be a non-empty list (events cannot be null)")
        return _events(v)

    @field_validator("active")
    @classmethod
    def _active(cls, v: bool | None) -> bool:
        if v is None:
            raise ValueError("must be true or false")
        return v


# -- target URLs (the addresses they resolve to: domain/addresses.py) ---------------------

def _checked(url: str, allow_http: bool) -> tuple[str, str, str, int]:
    allowed = ("https", "http") if allow_http else ("https",)
    checked = normalise_url(url, allowed, "must be an https URL", "must be an https URL")
    if urlsplit(checked.url).fragment:
        raise ValueError("must not contain a fragment")
    return checked.url, checked.scheme, checked.host, checked.port or (443 if checked.scheme == "https" else 80)


def target_url(url: str) -> str:
    """A target URL in its stored ASCII form (host in punycode), or ValueError."""
    return _checked(url, allow_http=True)[0]


def check_url_shape(url: str, allow_http: bool) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a target URL, or ValueError saying why it is refused.
    Addresses are checked separately, on what the host resolves to."""
    return _checked(url, allow_http)[1:]


# -- secrets and signatures ------------------------------------------------------------

def new_secret(token_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    digest = hmac.new(_key(secret), f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signing_secrets(item: dict[str, Any], now: int) -> list[str]:
    """The current secret, plus the previous one during the 24 h after a rotation."""
    out = [str(item["secret"])]
    if item.get("previous_secret") and int(item.get("previous_until") or 0) > now:
        out.append(str(item["previous_secret"]))
    return out


def headers(msg_id: str, timestamp: int, body: str, keys: Sequence[str]) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in keys),
    }


# -- payload -------------------------------------------------------------------------------

def payload(event_id: str, event_type: str, created_at: int, scope: dict[str, Any],
            data: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "type": event_type, "created_at": created_at, "scope": scope, "data": data}


def body(event: dict[str, Any]) -> str:
    """The exact bytes that are signed and sent (compact JSON, fixed for every retry)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


# -- outcome and retries ----------------------------------------------------------------------

def succeeded(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def gone(status_code: int | None) -> bool:
    return status_code == 410


def parse_schedule(text: str | None) -> tuple[int, ...]:
    """A backoff schedule from text: ``"5,300"``; ``"none"`` for no retries; unset for the API's."""
    if text is None or not text.strip():
        return BACKOFF
    if text.strip().lower() == "none":
        return ()
    out = tuple(int(part) for part in text.split(","))
    if any(d < 0 or d > MAX_DELAY for d in out):
        raise ValueError(f"backoff delays must be 0..{MAX_DELAY} seconds")
    return out


def retry_delay(attempt: int, schedule: Sequence[int] = BACKOFF,
                rand: Callable[[float, float], float] = random.uniform) -> int | None:
    """Seconds until the next attempt after failed attempt number ``attempt`` (1-based),
    with ±10 % jitter; ``None`` when the schedule is used up (the event failed)."""
    if attempt < 1 or attempt > len(schedule):
        return None
    base = schedule[attempt - 1]
    return max(0, min(MAX_DELAY, round(base * (1 + rand(-JITTER, JITTER)))))


def clip_error(text: str, limit: int = MAX_ERROR_BYTES) -> str:
    """At most ``limit`` bytes of UTF-8, cut on a character boundary."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")
