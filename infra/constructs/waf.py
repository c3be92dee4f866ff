"""Optional AWS WAF (context ``qrpro:waf=true``): per-IP rate-based rules
against floods, nothing else.

- The API stage gets a REGIONAL web ACL: above ``API_LIMIT`` requests per
  source IP in 5 minutes, 429 in the API's error envelope. Per-key budgets stay
  the API's own (DynamoDB counters, usage plans); this only stops one address
  hammering the authorizer.
- The distribution gets a CLOUDFRONT web ACL, which AWS only accepts in
  us-east-1: it is created (and attached) only when the stack is deployed
  there (a CloudFormation condition). Scans are never rate-limited by plan
  (docs/api.md section 4): ``REDIRECT_LIMIT`` is far above what one venue's
  shared address scans, a flood guard only.

Sampled requests are off (they keep client IP addresses) and WAF logging is
not configured, for the same reason; the rules' CloudWatch metrics are on.
"""

from __future__ import annotations

import json

from aws_cdk import Aws, CfnCondition, Fn
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_wafv2 as waf
from constructs import Construct

WINDOW_SECONDS = 300
API_LIMIT = 3_000  # per source IP per 5 minutes: 10 req/s sustained
REDIRECT_LIMIT = 20_000  # per source IP per 5 minutes: about 67 scans/s from one address
RATE_LIMITED_BODY = json.dumps({"error": "rate_limited", "window": "second"}, separators=(",", ":"))


def _visibility(name: str) -> waf.CfnWebACL.VisibilityConfigProperty:
    return waf.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=False)


def _rate_acl(scope: Construct, cid: str, *, waf_scope: str, limit: int, name: str,
              body: str, content_type: str) -> waf.CfnWebACL:
    return waf.CfnWebACL(
        scope, cid,
        scope=waf_scope,
        description=f"QR Pro {name} per-IP flood guard, {limit} requests per {WINDOW_SECONDS} s",
        default_action=waf.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility(f"qrpro-{name}"),
        custom_response_bodies={"rate_limited": waf.CfnWebACL.CustomResponseBodyProperty(
            content=body, content_type=content_type)},
        rules=[waf.CfnWebACL.RuleProperty(
            name="per-ip-rate", priority=0,
            statement=waf.CfnWebACL.StatementProperty(rate_based_statement=waf.CfnWebACL.RateBasedStatementProperty(
                limit=limit, aggregate_key_type="IP", evaluation_window_sec=WINDOW_SECONDS)),
            action=waf.CfnWebACL.RuleActionProperty(block=waf.CfnWebACL.BlockActionProperty(
                custom_response=waf.CfnWebACL.CustomResponseProperty(
                    response_code=429, custom_response_body_key="rate_limited"))),
            visibility_config=_visibility(f"qrpro-{name}-per-ip-rate"),
        )],
    )


class Waf(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage_arn: str,
                 distribution: cloudfront.Distribution, in_us_east_1: CfnCondition) -> None:
        super().__init__(scope, construct_id)
        self.api_acl = _rate_acl(self, "ApiAcl", waf_scope="REGIONAL", limit=API_LIMIT, name="api",
                                 body=RATE_LIMITED_BODY, content_type="APPLICATION_JSON")
        waf.CfnWebACLAssociation(self, "ApiAclAssociation", resource_arn=stage_arn,
                                 web_acl_arn=self.api_acl.attr_arn)

        self.redirect_acl = _rate_acl(self, "RedirectAcl", waf_scope="CLOUDFRONT", limit=REDIRECT_LIMIT,
                                      name="redirect", body="Too many requests. Try again in a moment.",
                                      content_type="TEXT_PLAIN")
        self.redirect_acl.cfn_options.condition = in_us_east_1
        cfn_distribution = distribution.node.default_child
        assert isinstance(cfn_distribution, cloudfront.CfnDistribution)
        cfn_distribution.add_property_override(
            "DistributionConfig.WebACLId",
            Fn.condition_if(in_us_east_1.logical_id, self.redirect_acl.attr_arn, Aws.NO_VALUE))
