"""CDK app entry point: ``.venv/bin/python infra/app.py`` (see cdk.json).

Synthesizes offline: no environment, no lookups, no AWS calls. The cdk-nag
AwsSolutions pack runs as a policy-validation plugin (cdk-nag 3).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, sys.path[0] is infra/ where infra/constructs would shadow the
# `constructs` library: put the repository root there instead.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "infra":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import infra  # noqa: E402, F401  (first: it points jsii at the repository's Node before aws_cdk starts it)

# isort: split
from aws_cdk import App, Validations  # noqa: E402

from infra.stack import QrProStack, truthy  # noqa: E402

STACK_NAME = "QrPro"


def build_app(context: dict[str, object] | None = None, *, nag: bool = True) -> tuple[App, QrProStack]:
    app = App(context=context) if context else App()
    return app, add_stack(app, nag=nag)


def add_stack(app: App, *, nag: bool = True) -> QrProStack:
    stack = QrProStack(app, STACK_NAME, description="QR Pro: dynamic QR codes REST API")
    if nag:  # imported here: the local stack synthesizes without cdk-nag installed
        from cdk_nag import AwsSolutionsChecks

        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


SHORT_DOMAIN_DECISION = """\
qrpro: no short domain (SHORT_DOMAIN / qrpro:shortDomain).

Every QR code this stack prints encodes its short link, https://<host>/<shortcode>. Without a
domain of your own the host is the distribution's generated *.cloudfront.net name: printed codes
are tied to that one distribution for good. Recreating the stack, moving to another account or
region, or putting a CDN or WAF of your choice in front would break every code already on paper,
and the name can never be moved to another service.

Deploy with SHORT_DOMAIN=<your domain> SHORT_CERT_ARN=<ACM certificate in us-east-1>, or say that
the cloudfront.net name is what you want (a trial stack, codes never printed):
  make deploy ALLOW_CLOUDFRONT_DOMAIN=1      (cdk: --context qrpro:allowCloudFrontDomain=true)
See docs/deploy.md, "The short domain".
"""


def short_domain_decided(app: App) -> bool:
    """A short domain is set, or the ``*.cloudfront.net`` name was chosen explicitly."""
    ctx = app.node.try_get_context
    return bool(ctx("qrpro:shortDomain")) or truthy(ctx("qrpro:allowCloudFrontDomain"))


def main() -> None:
    """What `cdk synth` and `cdk deploy` run (tests and the local stack call ``build_app``)."""
    app = App()
    if not short_domain_decided(app):
        sys.stderr.write(SHORT_DOMAIN_DECISION)
        sys.exit(1)
    add_stack(app)
    app.synth()


if __name__ == "__main__":
    main()
