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
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from qrpro_cli.runtime import Runtime, available

log = logging.getLogger("qrpro.local")

TEXT_TYPES = ("application/json", "text/", "application/xml", "image/svg+xml")
GATEWAY_ERRORS = {
    "not_signed_in": (401, {"error": "not_signed_in"}),
    "invalid_api_key": (401, {"error": "invalid_api_key"}),
}
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
    if method == "GET" and path == "/docs/openapi.json":
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
            return 500, {"error": "internal", "request_id": event["requestContext"]["requestId"]}
        policy = out["result"]
        effect = policy["policyDocument"]["Statement"][0]["Effect"]
        if effect != "Allow":
            return GATEWAY_ERRORS["invalid_api_key"]
        return dict(policy.get("context") or {}, principalId=policy.get("principalId"))

    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]],
               body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        request_id = str(uuid.uuid4())
        if len(body) > MAX_GATEWAY_BODY:
            return _json(413, {"error": "payload_too_large"}, request_id)
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
            return _json(500, {"error": "internal", "request_id": request_id}, request_id)
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
        """HTTP in, the gateway's answer out. Every method reaches the gateway (the API answers
        `405 method_not_allowed` on a known path); what http.server refuses itself, and a body
        whose framing cannot be trusted, is answered with the JSON error envelope. Nothing is
        logged with a client address, and no exception reaches socketserver's handler (which
        prints the peer address with a traceback)."""

        protocol_version = "HTTP/1.1"
        server_version = "qrpro-local"
        sys_version = ""
        timeout = 120  # a client that never sends the body it announced does not hold a thread forever

        def __getattr__(self, name: str) -> Any:
            if name.startswith("do_"):  # TRACE, CONNECT and any other token: the gateway decides
                return self._serve
            raise AttributeError(name)

        def handle_one_request(self) -> None:
            self.answered = False
            try:
                super().handle_one_request()
            except OSError:  # the client went away (reset, broken pipe, timeout)
                self.close_connection = True
            except Exception:
                log.exception("local gateway: a request failed")  # the traceback holds no client address
                self._refuse(500, {"error": "internal"})

        def _write(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.answered = True
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _refuse(self, status: int, body: dict[str, Any]) -> None:
            """An answer the gateway gives without reading on: the connection closes after it."""
            self.close_connection = True
            if not self.answered:
                self._write(*_json(status, body, str(uuid.uuid4())))

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own refusals (bad request line, headers too long, URI too long): JSON, not HTML."""
            self.command = self.command or ""  # None when the request line itself was refused
            if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
                self.request_version = "HTTP/1.1"  # else http.server writes no status line (HTTP/0.9)
            status = HTTPStatus(code)
            error = {400: "validation_error", 413: "payload_too_large"}.get(
                code, status.phrase.lower().replace(" ", "_").replace("-", "_"))
            body: dict[str, Any] = {"error": error,
                                    "message": f"malformed HTTP request: {message or status.description}"}
            if code == 400:
                body["field"] = "request"
            self._refuse(code, body)

        def _length(self) -> int | None:
            """The announced body length, or None after answering a request whose framing is broken."""
            if self.headers.get("Transfer-Encoding"):
                self._refuse(400, {"error": "validation_error", "field": "Transfer-Encoding",
                                   "message": "send the body with a Content-Length (no chunked transfer)"})
                return None
            values = set(self.headers.get_all("Content-Length") or ["0"])
            text = values.pop().strip() if len(values) == 1 else ""
            if not (text.isascii() and text.isdigit()):
                self._refuse(400, {"error": "validation_error", "field": "Content-Length",
                                   "message": "must be one whole number of bytes"})
                return None
            if int(text) > MAX_GATEWAY_BODY:
                self._refuse(413, {"error": "payload_too_large", "message": "the body is over 10 MiB"})
                return None
            return int(text)

        def _serve(self) -> None:
            if self.request_version == "HTTP/0.9":  # no headers, no status line: nothing API Gateway speaks
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/0.9 is not supported")
                return
            length = self._length()
            if length is None:
                return
            body = self.rfile.read(length) if length else b""
            if len(body) < length:  # the client closed before sending what it announced
                self.close_connection = True
                return
            self._write(*gateway.handle(self.command, self.path, list(self.headers.items()), body))

        def log_message(self, format: str, *args: Any) -> None:
            # No access log: it would hold client addresses (privacy promise).
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
