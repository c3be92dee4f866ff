"""Configuration from the environment, read once per process.

Endpoints are not configured here: boto3 reads ``AWS_ENDPOINT_URL_<SERVICE>``
itself, which is how the local stack points the same code at DynamoDB Local
and moto's server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    table_name: str = "qrpro"
    idempotency_table_name: str = "qrpro-idempotency"
    short_base_url: str = "https://aqr.net"
    api_base_url: str = "https://pro.qr.abundera.ai/api"
    # The origin that serves the redirects when it is not short_base_url (`qrpro local`:
    # http://127.0.0.1:<redirect-port>). Destinations may point at neither (redirect loops).
    redirect_origin: str = ""
    # Key that signs list cursors (tamper evidence). In AWS the stack passes the
    # ARN of a generated secret (read by qrpro.data.secrets); locally the stack
    # writes one per data dir and passes the value.
    cursor_secret: str = ""
    cursor_secret_arn: str = ""
    # Key material that seals webhook secrets at rest: the same two ways.
    webhook_key: str = ""
    webhook_key_arn: str = ""
    scans_queue_url: str = ""
    compaction_queue_url: str = ""  # the fan-out's fold jobs (docs/analytics.md)
    mail_queue_url: str = ""  # the monthly cap emails, sent by the mail function
    webhooks_queue_url: str = ""
    export_bucket: str = ""
    ses_sender: str = "no-reply@aqr.net"
    # Only `qrpro local` sets this: allows http:// and loopback webhook targets.
    allow_loopback_webhooks: bool = False
    # The stack's fallback API Gateway key (the authorizer's usageIdentifierKey for keys
    # without their own gateway key); empty: such keys return none.
    fallback_usage_key: str = ""


_TRAILING_SLASH_TRIMMED = frozenset({"short_base_url", "api_base_url", "redirect_origin"})


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Each field from the environment variable of its name in capitals (``TABLE_NAME``...),
    else its default above."""
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = os.environ.get(field.name.upper())
        if raw is None:
            continue
        if isinstance(field.default, bool):
            values[field.name] = _bool(raw, field.default)
        else:
            values[field.name] = raw.rstrip("/") if field.name in _TRAILING_SLASH_TRIMMED else raw
    return Settings(**values)  # type: ignore[arg-type]
