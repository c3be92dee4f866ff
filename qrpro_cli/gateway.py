"""The local API Gateway: real HTTP in, API Gateway REST (v1) proxy events out.

Mirrors what the deployed gateway does: the REQUEST authorizer runs first
(no result cache), its outcome maps to the same gateway responses
(`401 not_signed_in`, `401 invalid_api_key`), then the function's proxy
response is written back as HTTP. No client IP is put in the event.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from qrpro.api.pipeline import PUBLIC_ROUTES
from qrpro.domain.errors import ApiError, InvalidApiKey, NotSignedIn, PayloadTooLarge
from qrpro_cli.runtime import Runtime, available

log = logging.getLogger("qrpro.local")

TEXT_TYPES = ("application/json", "text/", "application/xml", "image/svg+xml")
# The same bodies as the deployed gateway responses (infra/constructs/api.py).
GATEWAY_ERRORS = {
    "not_signed_in": (401, NotSignedIn().body()),
    "invalid_api_key": (401, InvalidApiKey().body()),
    "payload_too_large": (413, PayloadTooLarge().body()),
}


def internal(request_id: str) -> dict[str, Any]:
    return {**ApiError().body(), "request_id": request_id}
MAX_GATEWAY_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit


def build_event(method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes,
                request_id: str, stage: str = "local") -> dict[str, Any]:
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    text_body: str | None = None
    is_b64 = False
    if body:
        ctype = (single.get("Content-Type") or single.get("content-type") or "").lower()
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body, is_b64 = base64.b64encode(body).decode("ascii"), True
        if not is_b64 and ctype and not ctype.startswith(TEXT_TYPES):
            text_body, is_b64 = base64.b64encode(body).decode("ascii"), True
    return {
        "resource": "/{proxy+}",
        "path": parts.path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": parts.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": stage,
            "httpMethod": method,
            "path": parts.path,
            "resourcePath": "/{proxy+}",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {},  # no sourceIp, no userAgent: nothing to leak downstream
        },
        "body": text_body,
        "isBase64Encoded": is_b64,
    }


def authorizer_event(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:000000000000:local/local/{event['httpMethod']}"
                     f"{event['path']}",
        "resource": event["resource"],
        "path": event["path"],
        "httpMethod": event["httpMethod"],
        "headers": event["headers"],
        "queryStringParameters": event["queryStringParameters"],
        "requestContext": event["requestContext"],
    }


Router = Callable[[str, str], tuple[str, bool]]  # (method, path) -> (function, needs auth)


def api_router(method: str, path: str) -> tuple[str, bool]:
    """The REST API's resources: as in infra/, the export has its own function."""
    if (method, path) in PUBLIC_ROUTES:  # the reference: GET /, /docs and its assets
        return "api", False
    if path.rstrip("/") == "/api/user/export" and available("export"):
        return "export", True
    return "api", True


def redirect_router(method: str, path: str) -> tuple[str, bool]:
    return "redirect", False


class Gateway:
    def __init__(self, runtime: Runtime, router: Router) -> None:
        self.runtime = runtime
        self.router = router

    def authorize(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]] | dict[str, Any]:
        headers = {k.lower(): v for k, v in event["headers"].items()}
        if "authorization" not in headers:
            return GATEWAY_ERRORS["not_signed_in"]
        out = self.runtime.invoke("authorizer", authorizer_event(event),
                                  request_id=event["requestContext"]["requestId"])
        if not out["ok"]:
            if out["message"] == "Unauthorized":
                return GATEWAY_ERRORS["not_signed_in"]
            log.error("authorizer failed: %s: %s", out["type"], out["message"])
            return 500, internal(event["requestContext"]["requestId"])
        policy = out["result"]
        effect = policy["policyDocument"]["Statement"][0]["Effect"]
        if effect != "Allow":
            return GATEWAY_ERRORS["invalid_api_key"]
        return dict(policy.get("context") or {}, principalId=policy.get("principalId"))

    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]],
               body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        request_id = str(uuid.uuid4())
        if len(body) > MAX_GATEWAY_BODY:
            return _json(*GATEWAY_ERRORS["payload_too_large"], request_id)
        event = build_event(method, raw_path, headers, body, request_id)
        function, needs_auth = self.router(method, event["path"])
        if needs_auth:
            auth = self.authorize(event)
            if isinstance(auth, tuple):
                return _json(auth[0], auth[1], request_id)
            event["requestContext"]["authorizer"] = auth
        out = self.runtime.invoke(function, event, request_id=request_id)
        if not out["ok"]:
            log.error("%s failed: %s: %s\n%s", function, out["type"], out["message"], out["trace"])
            return _json(500, internal(request_id), request_id)
        return _proxy_response(out["result"], request_id)


def _json(status: int, body: dict[str, Any], request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json; charset=utf-8"),
                    ("X-Request-Id", request_id)], json.dumps(body, separators=(",", ":")).encode()


def _proxy_response(result: dict[str, Any], request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    headers: list[tuple[str, str]] = []
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(name, str(v)) for v in values]
    seen = {n.lower() for n, _ in headers}
    headers += [(n, str(v)) for n, v in (result.get("headers") or {}).items() if n.lower() not in seen]
    headers.append(("X-Request-Id", request_id))
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return int(result.get("statusCode", 200)), headers, data


def make_server(host: str, port: int, gateway: Gateway) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "qrpro-local"
        sys_version = ""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, data = gateway.handle(self.command, self.path, list(self.headers.items()), body)
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            # No access log: it would hold client addresses (privacy promise).
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
