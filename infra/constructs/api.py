"""The REST API: ``/api`` → api function, ``GET /api/user/export`` → export
function, the reference (``GET /``, ``/docs``, its assets and ``/docs/openapi.json``)
without authorizer; a Lambda REQUEST authorizer with no result cache; every ``/api`` method requires the
authorizer's ``usageIdentifierKey`` on a usage plan (one per API plan, plus a
stack-owned fallback key on a fallback plan for keys without their own);
gateway responses in the API's JSON envelope; JSON access logs without viewer
IP or user agent."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.functions import LOG_RETENTION
from qrpro.domain import errors

STAGE = "prod"
DOCS_ASSETS = ("init.js", "swagger-ui.css", "swagger-ui-bundle.js")  # lambdas/api/docs.py serves them
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# Every type: API Gateway then returns the function's base64 bodies (PNG, PDF,
# ZIP) as bytes whatever the client's Accept header, and hands request bodies
# over base64-encoded, which the pipeline decodes (qrpro/api/pipeline.py).
BINARY_MEDIA_TYPES = ["*/*"]
# Daily requests per key (docs/api.md section 3). The exact budget is the DynamoDB counter;
# these usage plans are API Gateway's best-effort edge backstop.
USAGE_PLAN_QUOTAS: dict[str, int] = {"business": 1_000, "team": 10_000, "agency": 50_000}
# The stage's own throttle (every key together).
STAGE_RATE_LIMIT, STAGE_BURST_LIMIT = 500, 1_000
# The fallback plan carries every customer key that has no gateway key of its own yet (just
# created, sync pending or failed, or past the 10,000-keys quota): a shared daily quota would let
# a few of them exhaust it for all, so it has none; its throttle is the stage's, so riding on the
# fallback never refuses a request the stage would admit. Per-key budgets stay the DynamoDB counter.
FALLBACK_PLAN = "fallback"
FALLBACK_RATE_LIMIT, FALLBACK_BURST_LIMIT = STAGE_RATE_LIMIT, STAGE_BURST_LIMIT

# Only request facts: no $context.identity.* (no source IP, user agent, caller).
ACCESS_LOG_FIELDS: dict[str, str] = {
    "requestId": '"$context.requestId"',
    "requestTime": "$context.requestTimeEpoch",
    "method": '"$context.httpMethod"',
    "resourcePath": '"$context.resourcePath"',
    "path": '"$context.path"',
    "status": "$context.status",
    "protocol": '"$context.protocol"',
    "responseLength": '"$context.responseLength"',
    "latency": "$context.responseLatency",
    "integrationLatency": '"$context.integrationLatency"',
    "integrationStatus": '"$context.integrationStatus"',
    "principalId": '"$context.authorizer.principalId"',
    "authorizerError": '"$context.authorizer.error"',
    "errorType": '"$context.error.responseType"',
    "errorMessage": '"$context.error.message"',
    "xrayTraceId": '"$context.xrayTraceId"',
}


def access_log_format() -> str:
    return "{" + ",".join(f'"{k}":{v}' for k, v in ACCESS_LOG_FIELDS.items()) + "}"


def _body(err: errors.DomainError, **extra: str) -> str:
    """The envelope of a domain error, as the functions answer it (one definition of each message)."""
    return json.dumps({**err.body(), **extra}, separators=(",", ":"))


INVALID_KEY_BODY = _body(errors.InvalidApiKey())
NOT_FOUND_BODY = _body(errors.NotFound())
# (response type, status, body). Status None keeps API Gateway's own status.
# Every body carries a `message` (docs/api.md section 5).
GATEWAY_RESPONSES: list[tuple[apigw.ResponseType, str | None, str]] = [
    (apigw.ResponseType.UNAUTHORIZED, "401", _body(errors.NotSignedIn())),
    # The authorizer returns Deny for a bearer token that is not a live key.
    (apigw.ResponseType.ACCESS_DENIED, "401", INVALID_KEY_BODY),
    # The authorizer's usageIdentifierKey is no enabled key of a usage plan of the stage: only a
    # misconfigured stack (the fallback key missing), never a customer key (docs/deploy.md).
    (apigw.ResponseType.INVALID_API_KEY, "401", INVALID_KEY_BODY),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429",
     '{"error":"rate_limited","window":"day","message":"This key has spent its daily request budget: '
     'retry after the next UTC midnight."}'),
    (apigw.ResponseType.THROTTLED, "429",
     '{"error":"rate_limited","window":"second","message":"Too many requests at once: slow down and '
     'retry in a second."}'),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413", _body(errors.PayloadTooLarge())),
    (apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, "415", _body(errors.UnsupportedMediaType())),
    # Paths outside /api and /docs (API Gateway says 403 "Missing Authentication Token").
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "404", NOT_FOUND_BODY),
    (apigw.ResponseType.RESOURCE_NOT_FOUND, "404", NOT_FOUND_BODY),
    (apigw.ResponseType.DEFAULT_4_XX, None,
     '{"error":"bad_request","message":$context.error.messageString}'),
    (apigw.ResponseType.DEFAULT_5_XX, "500", _body(errors.DomainError(), request_id="$context.requestId")),
]


class Api(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, api_function: lambda_.IFunction,
                 export_function: lambda_.IFunction, authorizer_function: lambda_.IFunction,
                 fallback_usage_key: str, require_usage_key: bool = True, domain_name: str | None = None,
                 certificate_arn: str | None = None, export_timeout: Duration = Duration.seconds(29)) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=LOG_RETENTION)
        self.rest_api = apigw.RestApi(
            self, "RestApi",
            rest_api_name="qrpro",
            description="QR Pro API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=BINARY_MEDIA_TYPES,
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            # Stage logging needs the account's API Gateway CloudWatch role (AWS::ApiGateway::Account):
            # without it a fresh account refuses the stage ("CloudWatch Logs role ARN must be set in
            # account settings"). Retained on delete: other APIs of the account may rely on it.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                tracing_enabled=True,
                metrics_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(access_log_format()),
                throttling_rate_limit=STAGE_RATE_LIMIT,
                throttling_burst_limit=STAGE_BURST_LIMIT,
            ),
        )
        self.authorizer = apigw.RequestAuthorizer(
            self, "BearerAuthorizer",
            handler=authorizer_function,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            # 0: no cached Allow outlives a revocation (docs/api.md section 2).
            results_cache_ttl=Duration.seconds(0),
        )
        authed = apigw.MethodOptions(
            authorizer=self.authorizer,
            authorization_type=apigw.AuthorizationType.CUSTOM,
            api_key_required=require_usage_key,
        )
        authed_kw: dict[str, Any] = {"authorizer": self.authorizer,
                                     "authorization_type": apigw.AuthorizationType.CUSTOM,
                                     "api_key_required": require_usage_key}
        api_integration = apigw.LambdaIntegration(api_function, proxy=True, allow_test_invoke=False)
        export_integration = apigw.LambdaIntegration(export_function, proxy=True, allow_test_invoke=False,
                                                     timeout=export_timeout)

        root_api = self.rest_api.root.add_resource("api")
        root_api.add_method("ANY", api_integration, **authed_kw)
        root_api.add_proxy(default_integration=api_integration, default_method_options=authed, any_method=True)
        # /api/user exists as a resource (for /export), so it needs its own routes.
        user = root_api.add_resource("user")
        user.add_method("ANY", api_integration, **authed_kw)
        user.add_proxy(default_integration=api_integration, default_method_options=authed, any_method=True)
        export = user.add_resource("export")
        export.add_method("GET", export_integration, **authed_kw)
        export.add_method("ANY", api_integration, **authed_kw)  # other verbs: 405 from the api function

        # The reference (docs/api.md section 1), no authorizer: GET /, /docs, its document and assets.
        public = apigw.AuthorizationType.NONE
        docs = self.rest_api.root.add_resource("docs")
        self.public_methods = [
            self.rest_api.root.add_method("GET", api_integration, authorization_type=public),
            docs.add_method("GET", api_integration, authorization_type=public),
            docs.add_resource("openapi.json").add_method("GET", api_integration, authorization_type=public),
            *(docs.add_resource(asset).add_method("GET", api_integration, authorization_type=public)
              for asset in DOCS_ASSETS)]

        for rtype, status, body in GATEWAY_RESPONSES:
            self.rest_api.add_gateway_response(
                f"Gw{rtype.response_type}",
                type=rtype,
                status_code=status,
                templates={"application/json": body},
                response_headers={"Content-Type": f"'{JSON_CONTENT_TYPE}'"},
            )

        stages = [apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)]
        self.usage_plans: dict[str, apigw.UsagePlan] = {}
        for plan, limit in USAGE_PLAN_QUOTAS.items():
            self.usage_plans[plan] = self.rest_api.add_usage_plan(
                f"UsagePlan{plan.title()}",
                name=f"qrpro-{plan}",
                description=f"QR Pro {plan}: {limit} requests per key per day (edge backstop)",
                quota=apigw.QuotaSettings(limit=limit, period=apigw.Period.DAY),
                api_stages=stages,
            )
        # The key every customer key rides on until it has its own (lambdas/usagekeys): no quota.
        self.fallback_plan = self.rest_api.add_usage_plan(
            "UsagePlanFallback",
            name=f"qrpro-{FALLBACK_PLAN}",
            description="QR Pro: keys without their own gateway key (shared; throttle only, no quota)",
            throttle=apigw.ThrottleSettings(rate_limit=FALLBACK_RATE_LIMIT, burst_limit=FALLBACK_BURST_LIMIT),
            api_stages=stages,
        )
        self.fallback_key = apigw.ApiKey(
            self, "FallbackKey",
            description="QR Pro: usage identifier of customer keys without their own gateway key",
            value=fallback_usage_key, enabled=True)
        self.fallback_plan.add_api_key(self.fallback_key)

        self.domain: apigw.DomainName | None = None
        self.domain_name = domain_name if domain_name and certificate_arn else None
        if domain_name and certificate_arn:
            self.domain = self.rest_api.add_domain_name(
                "Domain",
                domain_name=domain_name,
                certificate=acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn),
                endpoint_type=apigw.EndpointType.REGIONAL,
                security_policy=apigw.SecurityPolicy.TLS_1_2,
            )

    def base_url(self) -> str:
        """The public ``/api`` base URL; built without the Stage (no dependency cycle with the functions)."""
        if self.domain_name is not None:
            return f"https://{self.domain_name}/api"
        stack = Stack.of(self)
        return (f"https://{self.rest_api.rest_api_id}.execute-api.{stack.region}."
                f"{stack.url_suffix}/{STAGE}/api")
