"""Build the Lambda assets into ``build/`` without Docker (no CDK import here).

- ``build/layer/python/``: the runtime dependencies of ``pyproject.toml`` (minus
  boto3/botocore, which the runtime provides) installed by
  ``pip install --platform manylinux2014_aarch64 --only-binary=:all:
  --python-version 3.13 --implementation cp --target ...`` (cached in
  ``build/layer-deps/``, keyed on the requirement list), plus ``python/qrpro``.
- ``build/functions/<fn>/``: ``lambdas/__init__.py`` and ``lambdas/<fn>/``
  (handler ``lambdas.<fn>.handler.handler``). Handlers are copied, never imported.
  The api function also gets Swagger UI's files in ``lambdas/api/swagger_ui/``
  (from ``node_modules/swagger-ui-dist``) for ``GET /docs``.

Every output has a hash stamp of its inputs in ``build/stamps/``: unchanged
inputs are not rebuilt. ``make build`` runs ``python -m infra.build_assets``;
``infra/constructs/bundling.py`` calls :func:`ensure_built` from CDK's local
bundling hook during ``cdk synth``.
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

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
LAMBDAS = ROOT / "lambdas"
LAYER_SRC = ROOT / "layers" / "qrpro"

FUNCTIONS: tuple[str, ...] = (
    "api", "authorizer", "redirect", "scans", "events", "webhooks", "export", "expiry",
)

# Lambda's python3.13 runtime is Amazon Linux 2023 (glibc 2.34): manylinux2014 wheels
# and newer manylinux_2_28 ones (e.g. recent pillow) both run there.
PIP_TARGET_ARGS: tuple[str, ...] = (
    "--platform", "manylinux2014_aarch64",
    "--platform", "manylinux_2_28_aarch64",
    "--only-binary=:all:",
    "--python-version", "3.13",
    "--implementation", "cp",
)
# Provided by the Lambda Python runtime: never shipped in the layer.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
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


# Swagger UI for GET /docs (npm swagger-ui-dist, pinned in package.json), copied into the api function.
SWAGGER_UI = ROOT / "node_modules" / "swagger-ui-dist"
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE")


def _extra_files(fn: str) -> list[Path]:
    return [SWAGGER_UI / name for name in SWAGGER_UI_FILES] if fn == "api" else []


def function_hash(fn: str) -> str:
    return _hash([LAMBDAS / "__init__.py", LAMBDAS / fn, *_extra_files(fn)], extra=("function", fn))


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
    extra = _extra_files(fn)
    if extra:
        missing = [str(p) for p in extra if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"run `npm ci` first: missing {', '.join(missing)}")
        (out / "lambdas" / fn / "swagger_ui").mkdir()
        for path in extra:
            shutil.copy2(path, out / "lambdas" / fn / "swagger_ui" / path.name)
    return out


def pip_command(target: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", *PIP_TARGET_ARGS, "--target", str(target), *layer_requirements()]


def deps_hash() -> str:
    return _hash([], extra=("deps", *PIP_TARGET_ARGS, *layer_requirements()))


def build_deps(out: Path) -> Path:
    """``out/python/<deps>``: wheels for aarch64 / cp313 (needs PyPI; cached by requirement hash)."""
    shutil.rmtree(out, ignore_errors=True)
    target = out / "python"
    target.mkdir(parents=True)
    subprocess.run(pip_command(target), check=True)
    for name in RUNTIME_PROVIDED:  # pulled in transitively (aws-xray-sdk → botocore)
        shutil.rmtree(target / name, ignore_errors=True)
        for info in target.glob(f"{name}-*.dist-info"):
            shutil.rmtree(info, ignore_errors=True)
    for junk in ("bin", "share"):
        shutil.rmtree(target / junk, ignore_errors=True)
    return out


def build_layer(out: Path, deps: Path) -> Path:
    """``out/python/<deps>`` (copied from ``deps``) + ``out/python/qrpro``."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(deps, out)
    shutil.copytree(LAYER_SRC, out / "python" / "qrpro", ignore=_IGNORED)
    return out


def _fresh(out: Path, stamp: Path, digest: str) -> bool:
    return out.is_dir() and stamp.is_file() and stamp.read_text() == digest


def ensure_built(kind: str, name: str = "") -> Path:
    """Build ``build/layer`` or ``build/functions/<name>`` unless its stamp matches the inputs.

    The pip step (``build/layer-deps``) is keyed on the requirements only, so an
    edit to ``layers/qrpro`` re-copies sources without downloading anything.
    """
    stamps = BUILD / "stamps"
    stamps.mkdir(parents=True, exist_ok=True)
    if kind == "layer":
        deps_out, deps_digest = BUILD / "layer-deps", deps_hash()
        if not _fresh(deps_out, stamps / "layer-deps", deps_digest):
            build_deps(deps_out)
            (stamps / "layer-deps").write_text(deps_digest)
        out, digest, stamp = BUILD / "layer", layer_hash(), stamps / "layer"
        if not _fresh(out, stamp, digest):
            build_layer(out, deps_out)
            stamp.write_text(digest)
        return out
    out, digest, stamp = BUILD / "functions" / name, function_hash(name), stamps / f"function-{name}"
    if not _fresh(out, stamp, digest):
        build_function(name, out)
        stamp.write_text(digest)
    return out


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
