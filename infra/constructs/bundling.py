"""Docker-free CDK asset bundling for the layer and the functions.

Each asset carries a :class:`LocalBundler` (``jsii.implements(ILocalBundling)``):
during ``cdk synth`` it builds into ``build/`` on first use (or when the inputs
changed; see ``infra/build_assets.py``, also run by ``make build``) and copies
the result into the asset staging directory. Docker is never used.

Asset hashes are computed from the inputs (sources, requirement list, pip
platform flags), so a synth that skips bundling (tests set the context
``aws:cdk:bundling-stacks`` to ``[]``) is fast, offline and deterministic.
"""

from __future__ import annotations

import shutil
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.build_assets import LAMBDAS, LAYER_SRC, ensure_built, function_hash, layer_hash

# Never pulled: LocalBundler.try_bundle always returns True (or raises).
_UNUSED_IMAGE = DockerImage.from_registry("public.ecr.aws/sam/build-python3.13")


@jsii.implements(ILocalBundling)
class LocalBundler:
    """Bundles without Docker: builds into ``build/`` (cached) and copies to the asset dir."""

    def __init__(self, kind: str, name: str = "") -> None:
        self.kind = kind
        self.name = name

    def try_bundle(self, output_dir: str, options: Any = None, **_kwargs: Any) -> bool:
        built = ensure_built(self.kind, self.name)
        shutil.copytree(built, output_dir, dirs_exist_ok=True)
        return True


def function_code(fn: str) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(LAMBDAS / fn),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=function_hash(fn),
        bundling=BundlingOptions(image=_UNUSED_IMAGE, local=LocalBundler("function", fn)),
    )


def layer_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(LAYER_SRC),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=layer_hash(),
        bundling=BundlingOptions(image=_UNUSED_IMAGE, local=LocalBundler("layer")),
    )
