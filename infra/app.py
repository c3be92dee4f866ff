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

from aws_cdk import App, Validations  # noqa: E402

from infra.stack import QrProStack  # noqa: E402

STACK_NAME = "QrPro"


def build_app(context: dict[str, object] | None = None, *, nag: bool = True) -> tuple[App, QrProStack]:
    app = App(context=context) if context else App()
    stack = QrProStack(app, STACK_NAME, description="QR Pro: dynamic QR codes REST API")
    if nag:  # imported here: the local stack synthesizes without cdk-nag installed
        from cdk_nag import AwsSolutionsChecks

        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
