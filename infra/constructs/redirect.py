"""The short-link host: CloudFront → the redirect function URL (AWS_IAM auth,
Origin Access Control). Nothing is cached (every scan reaches the function,
302 + no-store); the viewer country and user agent are forwarded, the viewer
``Host`` is not (a function URL rejects a foreign Host). Standard logging is
off: it would store viewer IP addresses."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

FORWARDED_HEADERS = ["CloudFront-Viewer-Country", "User-Agent"]


class Redirect(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, function: lambda_.Function,
                 domain_name: str | None = None, certificate_arn: str | None = None) -> None:
        super().__init__(scope, construct_id)
        self.function_url = function.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)

        self.origin_request_policy = cloudfront.OriginRequestPolicy(
            self, "OriginRequestPolicy",
            comment="QR Pro redirect: viewer country + user agent, never Host",
            header_behavior=cloudfront.OriginRequestHeaderBehavior.allow_list(*FORWARDED_HEADERS),
            query_string_behavior=cloudfront.OriginRequestQueryStringBehavior.none(),
            cookie_behavior=cloudfront.OriginRequestCookieBehavior.none(),
        )
        certificate = (acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)
                       if domain_name and certificate_arn else None)
        self.distribution = cloudfront.Distribution(
            self, "Distribution",
            comment="QR Pro short links",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.FunctionUrlOrigin.with_origin_access_control(self.function_url),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                origin_request_policy=self.origin_request_policy,
                compress=False,
            ),
            domain_names=[domain_name] if certificate is not None and domain_name else None,
            certificate=certificate,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_ALL,
            enable_logging=False,  # standard logs hold viewer IPs (privacy, API.md §7)
        )
        self.domain_name = domain_name if certificate is not None and domain_name else \
            self.distribution.distribution_domain_name

        # CloudFront (OAC) needs BOTH permissions on a function URL origin; without
        # lambda:InvokeFunction every request is 403.
        stack = Stack.of(self)
        source_arn = (f"arn:{stack.partition}:cloudfront::{stack.account}:distribution/"
                      f"{self.distribution.distribution_id}")
        principal = iam.ServicePrincipal("cloudfront.amazonaws.com")
        if not _has_permission(function, "lambda:InvokeFunctionUrl"):
            function.add_permission("CloudFrontInvokeFunctionUrl", principal=principal,
                                    action="lambda:InvokeFunctionUrl", source_arn=source_arn,
                                    function_url_auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)
        if not _has_permission(function, "lambda:InvokeFunction"):
            function.add_permission("CloudFrontInvokeFunction", principal=principal,
                                    action="lambda:InvokeFunction", source_arn=source_arn)

    @property
    def url(self) -> str:
        return f"https://{self.domain_name}"


def _has_permission(function: lambda_.Function, action: str) -> bool:
    stack = Stack.of(function)
    for child in function.node.find_all():
        if isinstance(child, lambda_.CfnPermission) and stack.resolve(child.action) == action \
                and stack.resolve(child.principal) == "cloudfront.amazonaws.com":
            return True
    return False
