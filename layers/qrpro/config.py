"""Configuration from the environment, read once per process.

Endpoints are not configured here: boto3 reads ``AWS_ENDPOINT_URL_<SERVICE>``
itself, which is how the local stack points the same code at DynamoDB Local
and moto's server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    webhooks_queue_url: str = ""
    export_bucket: str = ""
    ses_sender: str = "no-reply@aqr.net"
    # Only `qrpro local` sets this: allows http:// and loopback webhook targets.
    allow_loopback_webhooks: bool = False
    # The stack's fallback API Gateway key (the authorizer's usageIdentifierKey for keys
    # without their own gateway key); empty: such keys return none.
    fallback_usage_key: str = ""



@lru_cache(maxsize=1)
def settings() -> Settings:
    env = os.environ
    return Settings(
        table_name=env.get("TABLE_NAME", "qrpro"),
        idempotency_table_name=env.get("IDEMPOTENCY_TABLE_NAME", "qrpro-idempotency"),
        short_base_url=env.get("SHORT_BASE_URL", "https://aqr.net").rstrip("/"),
        api_base_url=env.get("API_BASE_URL", "https://pro.qr.abundera.ai/api").rstrip("/"),
        redirect_origin=env.get("REDIRECT_ORIGIN", "").rstrip("/"),
        cursor_secret=env.get("CURSOR_SECRET", ""),
        cursor_secret_arn=env.get("CURSOR_SECRET_ARN", ""),
        webhook_key=env.get("WEBHOOK_KEY", ""),
        webhook_key_arn=env.get("WEBHOOK_KEY_ARN", ""),
        scans_queue_url=env.get("SCANS_QUEUE_URL", ""),
        webhooks_queue_url=env.get("WEBHOOKS_QUEUE_URL", ""),
        export_bucket=env.get("EXPORT_BUCKET", ""),
        ses_sender=env.get("SES_SENDER", "no-reply@aqr.net"),
        allow_loopback_webhooks=_bool(env.get("ALLOW_LOOPBACK_WEBHOOKS")),
        fallback_usage_key=env.get("FALLBACK_USAGE_KEY", ""),
    )
