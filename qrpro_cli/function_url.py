"""CloudFront in front of the redirect's function URL, on a local port: only
the methods the distribution allows and only the headers of its origin
request policy pass, and the function gets the function URL payload
(format 2.0)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from qrpro_cli.gateway import API_ID, NO_CLIENT_IP, Reply, event_body, proxy_reply
from qrpro_cli.runtime import Runtime
from qrpro_cli.template import REGION

log = logging.getLogger("qrpro.local")


class FunctionUrlEdge:
    """CloudFront -> Lambda function URL (payload format 2.0) on a local port."""

    def __init__(self, runtime: Runtime, function: str, forwarded: list[str], allowed_methods: list[str]) -> None:
        self.runtime = runtime
        self.function = function
        self.forwarded = {h.lower() for h in forwarded}
        self.allowed = set(allowed_methods)

    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        request_id = str(uuid.uuid4())
        if method not in self.allowed:  # CloudFront's own answer: the function never sees it
            text = b"This distribution is not configured to allow the HTTP request method that was used " \
                   b"for this request. The distribution supports only cachable requests."
            return 403, [("Content-Type", "text/plain"), ("X-Request-Id", request_id)], text
        out = self.runtime.invoke(self.function, self.event(method, raw_path, headers, body, request_id),
                                  "function-url", request_id=request_id)
        if not out["ok"]:
            log.error("%s failed: %s: %s\n%s", self.function, out["type"], out["message"], out["trace"])
            return 502, [("Content-Type", "text/plain"), ("X-Request-Id", request_id)], b"502 Bad Gateway"
        return proxy_reply(out["result"], request_id)

    def event(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes,
              request_id: str) -> dict[str, Any]:
        """What CloudFront's origin request reaches the function as: only the policy's headers
        (lowercased, repeats joined by commas), no query string (the policy forwards none)."""
        path = urlsplit(raw_path).path
        kept: dict[str, str] = {}
        for name, value in headers:
            if name.lower() in self.forwarded:
                kept[name.lower()] = f"{kept[name.lower()]},{value}" if name.lower() in kept else value
        text_body, is_b64 = event_body(body, kept)
        now = datetime.now(UTC)
        domain = f"{API_ID}.lambda-url.{REGION}.on.aws"
        event = {
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "", "headers": kept,
            "requestContext": {
                "accountId": "anonymous", "apiId": API_ID, "domainName": domain, "domainPrefix": API_ID,
                "requestId": request_id, "routeKey": "$default", "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "timeEpoch": int(now.timestamp() * 1000),
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": NO_CLIENT_IP,
                         "userAgent": kept.get("user-agent", "Amazon CloudFront")},
            },
            "isBase64Encoded": is_b64,
        }
        if text_body is not None:
            event["body"] = text_body
        return event
