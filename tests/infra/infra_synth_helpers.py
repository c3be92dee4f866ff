"""Synthesize the QR Pro stack for tests (used by conftest and test_infra_stack).

Bundling is skipped (context ``aws:cdk:bundling-stacks = []``, the CDK-native
switch): assets point at the source folders, so the synth is offline and needs
no ``build/``. ``make synth`` exercises the real bundler.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


@dataclass
class Synth:
    template: dict[str, Any]
    template_path: Path
    assembly_dir: Path
    stack: Any
    nag_error: str | None


def cdk_json_context() -> dict[str, Any]:
    """The feature flags of cdk.json: tests synthesize what `cdk synth` synthesizes."""
    return dict(json.loads((ROOT / "cdk.json").read_text())["context"])


def synth(context: dict[str, Any] | None = None, *, nag: bool = True) -> Synth:
    from infra.app import STACK_NAME, build_app

    ctx = {**cdk_json_context(), **NO_BUNDLING, **(context or {})}
    app, stack = build_app(ctx, nag=nag)
    nag_error = None
    try:
        assembly = app.synth()
    except RuntimeError as exc:  # cdk-nag violations fail the synth: keep the report, synth again
        if not nag:
            raise
        nag_error = str(exc)
        app, stack = build_app(ctx, nag=False)
        assembly = app.synth()
    artifact = assembly.get_stack_by_name(STACK_NAME)
    return Synth(template=artifact.template, template_path=Path(assembly.directory) / artifact.template_file,
                 assembly_dir=Path(assembly.directory), stack=stack, nag_error=nag_error)
