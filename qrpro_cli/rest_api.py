"""API Gateway's REST API on a local port, built from the synthesized template.

The template's resources and methods route each request (``{proxy+}``
greedy, exact path parts first, a method's own verb before ``ANY``), the
REQUEST authorizer runs first when the method is ``CUSTOM`` (no result
cache), its policy is evaluated against the method ARN, and the template's
gateway responses answer what never reaches a function. A method with
``apiKeyRequired`` then applies the usage plans to the authorizer's
``usageIdentifierKey`` (:mod:`qrpro_cli.usage`). Functions get REST (v1)
proxy events.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from qrpro_cli.gateway import API_ID, MAX_GATEWAY_BODY, NO_CLIENT_IP, Reply, event_body, json_reply, proxy_reply
from qrpro_cli.runtime import Runtime
from qrpro_cli.template import ACCOUNT, REGION, Route
from qrpro_cli.usage import UsagePlans

log = logging.getLogger("qrpro.local")

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
    text_body, is_b64 = event_body(body, single)
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
            return json_reply(405, {"error": "method_not_allowed",
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
        return proxy_reply(out["result"], request_id)
