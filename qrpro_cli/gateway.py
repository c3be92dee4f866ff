"""The local edges, built from the synthesized template.

- :class:`RestApi` is API Gateway's REST API: the template's resources and
  methods route each request (``{proxy+}`` greedy, exact path parts first, a
  method's own verb before ``ANY``), the REQUEST authorizer runs first when the
  method is ``CUSTOM`` (no result cache), its policy is evaluated against the
  method ARN, and the template's gateway responses answer what never reaches a
  function. A method with ``apiKeyRequired`` then applies the usage plans to
  the authorizer's ``usageIdentifierKey`` (:mod:`qrpro_cli.usage`). Functions
  get REST (v1) proxy events.
- :class:`FunctionUrlEdge` is CloudFront in front of the redirect's function
  URL: only the methods the distribution allows and only the headers of its
  origin request policy pass, and the function gets the function URL payload
  (format 2.0).

No client IP reaches an event: ``sourceIp`` is a fixed documentation address.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from qrpro_cli.runtime import Runtime
from qrpro_cli.template import ACCOUNT, REGION, Route
from qrpro_cli.usage import UsagePlans

log = logging.getLogger("qrpro.local")

TEXT_TYPES = ("application/json", "text/", "application/xml", "image/svg+xml")
MAX_GATEWAY_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit
NO_CLIENT_IP = "192.0.2.1"  # RFC 5737 documentation address: never the caller's
API_ID = "local"
API_METHODS = {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}  # what ANY covers
# API Gateway's statuses for its response types (when the template sets none).
RESPONSE_STATUS = {
    "UNAUTHORIZED": 401, "ACCESS_DENIED": 403, "MISSING_AUTHENTICATION_TOKEN": 403, "RESOURCE_NOT_FOUND": 404,
    "REQUEST_TOO_LARGE": 413, "UNSUPPORTED_MEDIA_TYPE": 415, "QUOTA_EXCEEDED": 429, "THROTTLED": 429,
    "AUTHORIZER_CONFIGURATION_ERROR": 500, "AUTHORIZER_FAILURE": 500, "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504, "API_CONFIGURATION_ERROR": 500, "INVALID_API_KEY": 403,
}
RESPONSE_MESSAGE = {
    "UNAUTHORIZED": "Unauthorized", "ACCESS_DENIED": "User is not authorized to access this resource",
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token", "REQUEST_TOO_LARGE": "Request Too Long",
    "AUTHORIZER_CONFIGURATION_ERROR": None, "INTEGRATION_TIMEOUT": "Endpoint request timed out",
    "INTEGRATION_FAILURE": None, "API_CONFIGURATION_ERROR": "Internal server error",
}

Reply = tuple[int, list[tuple[str, str]], bytes]


def build_event(method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, request_id: str,
                stage: str = "prod", resource: str = "/{proxy+}",
                path_parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """API Gateway's REST proxy event (payload format 1.0) for one request."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    text_body, is_b64 = _body(body, single)
    now = datetime.now(UTC)
    return {
        "resource": resource,
        "path": parts.path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": API_ID, "stage": stage, "protocol": "HTTP/1.1",
            "requestId": request_id, "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "requestTimeEpoch": int(now.timestamp() * 1000),
            # As behind a custom domain: the local port has no stage prefix in its paths.
            "httpMethod": method, "path": parts.path, "resourcePath": resource,
            "identity": {"sourceIp": NO_CLIENT_IP},
        },
        "body": text_body,
        "isBase64Encoded": is_b64,
    }


def _body(body: bytes, headers: dict[str, str]) -> tuple[str | None, bool]:
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


def authorizer_event(event: dict[str, Any], method_arn: str) -> dict[str, Any]:
    keys = ("resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
            "multiValueQueryStringParameters", "pathParameters", "stageVariables", "requestContext")
    return {"type": "REQUEST", "methodArn": method_arn, **{k: event[k] for k in keys}}


@dataclass
class Authorized:
    context: dict[str, Any]  # requestContext.authorizer
    usage_key: str | None  # the usageIdentifierKey


@dataclass
class Match:
    route: Route
    path_parameters: dict[str, str] | None


def match(routes: list[Route], method: str, path: str) -> Match | bool | None:
    """The method serving ``path``: a Match, ``False`` when the resource exists but not for this verb,
    ``None`` when no resource matches (both answer API Gateway's MISSING_AUTHENTICATION_TOKEN)."""
    segments = [s for s in path.split("/") if s]
    best: tuple[tuple[int, ...], str, dict[str, str]] | None = None
    for resource in {r.path for r in routes}:
        params = _match_resource([s for s in resource.split("/") if s], segments)
        if params is None:
            continue
        rank = tuple(0 if p.startswith("{") else 1 for p in resource.split("/") if p)
        if best is None or rank > best[0]:
            best = (rank, resource, params)
    if best is None:
        return None
    candidates = [r for r in routes if r.path == best[1]]
    route = next((r for r in candidates if r.method == method), None) or next(
        (r for r in candidates if r.method == "ANY"), None)
    return Match(route, best[2] or None) if route else False


def _match_resource(parts: list[str], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, part in enumerate(parts):
        if part.endswith("+}"):
            rest = segments[i:]
            if not rest:
                return None
            params[part[1:-2]] = "/".join(rest)
            return params
        if i >= len(segments):
            return None
        if part.startswith("{"):
            params[part[1:-1]] = segments[i]
        elif part != segments[i]:
            return None
    return params if len(parts) == len(segments) else None


class RestApi:
    """API Gateway (REST) on a local port."""

    def __init__(self, runtime: Runtime, routes: list[Route], functions: dict[str, str],
                 authorizer: str | None, responses: dict[str, tuple[int | None, str]], stage: str,
                 usage: UsagePlans | None = None) -> None:
        self.runtime = runtime
        self.routes = routes
        self.functions = functions  # logical id -> function name
        self.authorizer = authorizer
        self.responses = responses
        self.stage = stage
        self.usage = usage  # None: no method requires an API key

    def gateway_response(self, kind: str, request_id: str, message: str | None = None) -> Reply:
        status, template = self.responses.get(kind, (None, None))
        default_status = RESPONSE_STATUS.get(kind, 500)
        if template is None:
            fallback = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
            fb_status, template = self.responses.get(fallback, (None, None))
            status = status or fb_status
        message = message if message is not None else RESPONSE_MESSAGE.get(kind) or "Internal server error"
        if template is None:
            template = '{"message":$context.error.messageString}'
        body = (template.replace("$context.error.messageString", json.dumps(message))
                .replace("$context.requestId", request_id).replace("$context.error.responseType", kind))
        return (status or default_status, [("Content-Type", "application/json; charset=utf-8"),
                                           ("X-Request-Id", request_id)], body.encode())

    def method_arn(self, method: str, path: str) -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{self.stage}/{method}{path}"

    def authorize(self, event: dict[str, Any]) -> Reply | Authorized:
        """The authorizer's context and usageIdentifierKey, or the gateway's refusal."""
        request_id = event["requestContext"]["requestId"]
        if not any(k.lower() == "authorization" and v for k, v in event["headers"].items()):
            return self.gateway_response("UNAUTHORIZED", request_id)  # identity source missing: not invoked
        assert self.authorizer is not None
        method_arn = self.method_arn(event["httpMethod"], event["path"])
        out = self.runtime.invoke(self.authorizer, authorizer_event(event, method_arn), "authorizer",
                                  request_id=request_id)
        if not out["ok"]:
            if out["message"] == "Unauthorized":
                return self.gateway_response("UNAUTHORIZED", request_id)
            log.error("authorizer failed: %s: %s", out["type"], out["message"])
            return self.gateway_response("AUTHORIZER_CONFIGURATION_ERROR", request_id)
        from qrpro_cli.iam import Check, Policy

        result = out["result"]
        try:
            allowed = Policy([result["policyDocument"]]).allows(Check("execute-api:Invoke", method_arn))
        except (KeyError, TypeError, ValueError):
            log.error("authorizer returned an invalid policy")
            return self.gateway_response("AUTHORIZER_CONFIGURATION_ERROR", request_id)
        if not allowed:
            return self.gateway_response("ACCESS_DENIED", request_id)
        usage_key = result.get("usageIdentifierKey")
        return Authorized({**{k: str(v) for k, v in (result.get("context") or {}).items()},
                           "principalId": result.get("principalId")}, str(usage_key) if usage_key else None)

    def handle(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        request_id = str(uuid.uuid4())
        if method not in API_METHODS:  # API Gateway's methods are these seven; docs/api.md says 405 for others
            return _json(405, {"error": "method_not_allowed",
                               "message": f"{method} is not supported: use {', '.join(sorted(API_METHODS))}"},
                         request_id)
        if len(body) > MAX_GATEWAY_BODY:
            return self.gateway_response("REQUEST_TOO_LARGE", request_id)
        path = urlsplit(raw_path).path
        found = match(self.routes, method, path)
        if not isinstance(found, Match):
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id)
        route = found.route
        event = build_event(method, raw_path, headers, body, request_id, self.stage, route.path,
                            found.path_parameters)
        usage_key = None
        if route.authorized:
            auth = self.authorize(event)
            if isinstance(auth, tuple):
                return auth
            event["requestContext"]["authorizer"], usage_key = auth.context, auth.usage_key
        if route.api_key_required:
            refused = self.usage.admit(usage_key) if self.usage else "INVALID_API_KEY"
            if refused:
                return self.gateway_response(refused, request_id)
        name = self.functions[route.function]
        out = self.runtime.invoke(name, event, "apigateway", request_id=request_id)
        if not out["ok"]:
            if out["type"] == "Sandbox.Timedout":
                return self.gateway_response("INTEGRATION_TIMEOUT", request_id)
            log.error("%s failed: %s: %s\n%s", name, out["type"], out["message"], out["trace"])
            return self.gateway_response("DEFAULT_5XX", request_id, "Internal server error")
        return _proxy_response(out["result"], request_id)


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
        return _proxy_response(out["result"], request_id)

    def event(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes,
              request_id: str) -> dict[str, Any]:
        """What CloudFront's origin request reaches the function as: only the policy's headers
        (lowercased, repeats joined by commas), no query string (the policy forwards none)."""
        path = urlsplit(raw_path).path
        kept: dict[str, str] = {}
        for name, value in headers:
            if name.lower() in self.forwarded:
                kept[name.lower()] = f"{kept[name.lower()]},{value}" if name.lower() in kept else value
        text_body, is_b64 = _body(body, kept)
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


def _json(status: int, body: dict[str, Any], request_id: str) -> Reply:
    return status, [("Content-Type", "application/json; charset=utf-8"), ("X-Request-Id", request_id)], \
        json.dumps(body, separators=(",", ":")).encode()


def _proxy_response(result: dict[str, Any], request_id: str) -> Reply:
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


def make_server(host: str, port: int, gateway: RestApi | FunctionUrlEdge) -> ThreadingHTTPServer:
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
