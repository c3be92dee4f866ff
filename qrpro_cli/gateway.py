"""What the local edges share: the HTTP server in front of each, the answer
they give (:data:`Reply`) and the way a body reaches an event.

The edges themselves, built from the synthesized template:

- :mod:`qrpro_cli.rest_api`: API Gateway's REST API (REST v1 proxy events,
  the REQUEST authorizer, gateway responses, usage plans);
- :mod:`qrpro_cli.function_url`: CloudFront in front of the redirect's
  function URL (payload format 2.0).

No client IP reaches an event: ``sourceIp`` is a fixed documentation address.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

log = logging.getLogger("qrpro.local")

TEXT_TYPES = ("application/json", "text/", "application/xml", "image/svg+xml")
MAX_GATEWAY_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit
NO_CLIENT_IP = "192.0.2.1"  # RFC 5737 documentation address: never the caller's
API_ID = "local"

Reply = tuple[int, list[tuple[str, str]], bytes]


class Edge(Protocol):
    """A local edge (:class:`~qrpro_cli.rest_api.RestApi`, :class:`~qrpro_cli.function_url.FunctionUrlEdge`):
    one HTTP request in, its answer out."""

    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes) -> Reply: ...


def event_body(body: bytes, headers: dict[str, str]) -> tuple[str | None, bool]:
    """The body as API Gateway passes it: text, or base64 for binary media types."""
    if not body:
        return None, False
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "").lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True
    if ctype and not ctype.startswith(TEXT_TYPES):
        return base64.b64encode(body).decode("ascii"), True
    return text, False


def json_reply(status: int, body: dict[str, Any], request_id: str) -> Reply:
    return status, [("Content-Type", "application/json; charset=utf-8"), ("X-Request-Id", request_id)], \
        json.dumps(body, separators=(",", ":")).encode()


def proxy_reply(result: dict[str, Any], request_id: str) -> Reply:
    """A function's proxy result (REST v1 or function URL) as the HTTP answer."""
    headers: list[tuple[str, str]] = []
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(name, str(v)) for v in values]
    seen = {n.lower() for n, _ in headers}
    headers += [(n, str(v)) for n, v in (result.get("headers") or {}).items() if n.lower() not in seen]
    headers += [("Set-Cookie", c) for c in result.get("cookies") or []]
    headers.append(("X-Request-Id", request_id))
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return int(result.get("statusCode", 200)), headers, data


def make_server(host: str, port: int, gateway: Edge) -> ThreadingHTTPServer:
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
                self._write(*json_reply(status, body, str(uuid.uuid4())))

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
