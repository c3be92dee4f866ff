"""The short-link host: CloudFront → the redirect function URL (AWS_IAM auth,
Origin Access Control). Nothing is cached (every scan reaches the function,
302 + no-store); the viewer country and user agent are forwarded, the viewer
``Host`` is not (a function URL rejects a foreign Host). Standard logging is
off: it would store viewer IP addresses."""

from __future__ import annotations

from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
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
            # Only meaningful with a custom certificate (the default one is fixed by CloudFront).
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021
            if certificate is not None else None,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_ALL,
            enable_logging=False,  # standard logs hold viewer IPs (privacy, docs/api.md section 7)
        )
        self.domain_name = domain_name if certificate is not None and domain_name else \
            self.distribution.distribution_domain_name

        # CloudFront (OAC) needs BOTH lambda:InvokeFunctionUrl and lambda:InvokeFunction
        # (source ARN: this distribution; the second only via the function URL). Since
        # aws-cdk-lib 2.275 (the floor in pyproject.toml) FunctionUrlOrigin.with_origin_access_control
        # grants both; tests/infra asserts the template has them.

    @property
    def url(self) -> str:
        return f"https://{self.domain_name}"
