"""Docker-free asset bundling for the Lambda layer and the functions.

Two entry points share the same builders:

- ``make build`` runs ``python -m infra.constructs.bundling`` which fills
  ``build/layer/`` (``python/`` with the runtime dependencies installed for
  ``manylinux2014_aarch64`` / CPython 3.13 plus ``python/qrpro``) and
  ``build/functions/<fn>/`` (``lambdas/__init__.py`` and ``lambdas/<fn>/``).
- During ``cdk synth`` each asset carries a :class:`LocalBundler`
  (``jsii.implements(ILocalBundling)``): it builds into ``build/`` on first use
  (or when the inputs changed, tracked by a hash stamp) and copies the result
  into the asset staging directory. Docker is never used.

The asset hashes are computed here from the inputs (sources, requirement list,
pip platform flags), so a synth that skips bundling (tests set the context
``aws:cdk:bundling-stacks`` to ``[]``) is fast, offline and deterministic.
Nothing here imports the function handlers.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
LAMBDAS = ROOT / "lambdas"
LAYER_SRC = ROOT / "layers" / "qrpro"

FUNCTIONS: tuple[str, ...] = (
    "api", "authorizer", "redirect", "scans", "events", "webhooks", "export", "expiry",
)

PIP_TARGET_ARGS: tuple[str, ...] = (
    "--platform", "manylinux2014_aarch64",
    "--only-binary=:all:",
    "--python-version", "3.13",
    "--implementation", "cp",
)
# Provided by the Lambda Python runtime: never shipped in the layer.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# Never pulled: LocalBundler.try_bundle always returns True (or raises).
_UNUSED_IMAGE = DockerImage.from_registry("public.ecr.aws/sam/build-python3.13")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")


def layer_requirements() -> list[str]:
    """The runtime dependencies of ``pyproject.toml`` minus what Lambda provides."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    deps: list[str] = data["project"]["dependencies"]
    out = []
    for dep in deps:
        name = dep.split("[", 1)[0].split("<", 1)[0].split(">", 1)[0].split("=", 1)[0].strip().lower()
        if name not in RUNTIME_PROVIDED:
            out.append(dep)
    return out


def _files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(p for p in path.rglob("*")
                         if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return sorted(found)


def _hash(paths: Iterable[Path], extra: Sequence[str] = ()) -> str:
    digest = hashlib.sha256()
    for item in extra:
        digest.update(item.encode() + b"\0")
    for file in _files(paths):
        digest.update(str(file.relative_to(ROOT)).encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def function_hash(fn: str) -> str:
    return _hash([LAMBDAS / "__init__.py", LAMBDAS / fn], extra=("function", fn))


def layer_hash() -> str:
    return _hash([LAYER_SRC], extra=("layer", *PIP_TARGET_ARGS, *layer_requirements()))


def build_function(fn: str, out: Path) -> Path:
    """``out/lambdas/__init__.py`` + ``out/lambdas/<fn>/``: handler ``lambdas.<fn>.handler.handler``."""
    if fn not in FUNCTIONS:
        raise ValueError(f"unknown function {fn!r}")
    shutil.rmtree(out, ignore_errors=True)
    (out / "lambdas").mkdir(parents=True)
    shutil.copy2(LAMBDAS / "__init__.py", out / "lambdas" / "__init__.py")
    shutil.copytree(LAMBDAS / fn, out / "lambdas" / fn, ignore=_IGNORED)
    return out


def pip_command(target: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", *PIP_TARGET_ARGS, "--target", str(target), *layer_requirements()]


def build_layer(out: Path) -> Path:
    """``out/python/<deps>`` (aarch64 / cp313 wheels) + ``out/python/qrpro``."""
    shutil.rmtree(out, ignore_errors=True)
    target = out / "python"
    target.mkdir(parents=True)
    subprocess.run(pip_command(target), check=True)  # noqa: S603 - fixed argv, no shell
    for name in RUNTIME_PROVIDED:  # pulled in transitively (aws-xray-sdk → botocore)
        shutil.rmtree(target / name, ignore_errors=True)
        for info in target.glob(f"{name}-*.dist-info"):
            shutil.rmtree(info, ignore_errors=True)
    shutil.rmtree(target / "bin", ignore_errors=True)
    shutil.copytree(LAYER_SRC, target / "qrpro", ignore=_IGNORED)
    return out


def ensure_built(kind: str, name: str = "") -> Path:
    """Build ``build/layer`` or ``build/functions/<name>`` unless its stamp matches the inputs."""
    if kind == "layer":
        out, digest = BUILD / "layer", layer_hash()
    else:
        out, digest = BUILD / "functions" / name, function_hash(name)
    stamp = BUILD / "stamps" / (f"{kind}-{name}" if name else kind)
    if out.is_dir() and stamp.is_file() and stamp.read_text() == digest:
        return out
    if kind == "layer":
        build_layer(out)
    else:
        build_function(name, out)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    return out


@jsii.implements(ILocalBundling)
class LocalBundler:
    """Bundles without Docker: builds into ``build/`` (cached) and copies to the asset dir."""

    def __init__(self, kind: str, name: str = "") -> None:
        self.kind = kind
        self.name = name

    def try_bundle(self, output_dir: str, **_options: Any) -> bool:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Lambda layer and function assets into build/.")
    parser.add_argument("targets", nargs="*", help="'layer' and/or function names (default: all)")
    args = parser.parse_args(argv)
    targets = args.targets or ["layer", *FUNCTIONS]
    for target in targets:
        path = ensure_built("layer") if target == "layer" else ensure_built("function", target)
        print(f"built {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
