"""Build the Lambda assets into ``build/`` without Docker (no CDK import here).

- ``build/layer/python/``: the runtime dependencies of ``pyproject.toml`` exactly
  as pinned (with hashes) in ``requirements-lambda.lock`` (minus boto3/botocore/
  s3transfer, which the runtime provides), installed by ``pip install
  --require-hashes --no-deps --platform manylinux2014_aarch64 --only-binary=:all:
  --python-version 3.13 --implementation cp --target ...`` (cached in
  ``build/layer-deps/``, keyed on the lock), plus ``python/qrpro``.
- ``requirements-lambda.lock``: ``infra/lock.py`` (resolving and checking it).
- ``build/functions/<fn>/``: ``lambdas/__init__.py`` and ``lambdas/<fn>/``
  (handler ``lambdas.<fn>.handler.handler``). Handlers are copied, never imported.
  The api function also gets Swagger UI's files in ``lambdas/api/swagger_ui/``
  (from ``node_modules/swagger-ui-dist``) for ``GET /docs``.

Both carry bytecode compiled for the runtime (``__pycache__/*.cpython-313.pyc``,
unchecked-hash, so a zip's timestamps cannot invalidate it) when an interpreter
of the runtime's version is found (``$QRPRO_RUNTIME_PYTHON`` or ``python3.13``):
Lambda's code directories are read-only, so without it every cold start
compiles every module it imports (docs/performance.md, "Bytecode"). Without
such an interpreter the assets ship source only, with a warning;
``QRPRO_REQUIRE_BYTECODE=1`` (set by ``make deploy``) makes that an error.

Every output has a hash stamp of its inputs in ``build/stamps/``: unchanged
inputs are not rebuilt. ``make build`` runs ``python -m infra.build_assets``;
``infra/constructs/bundling.py`` calls :func:`ensure_built` from CDK's local
bundling hook during ``cdk synth``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

from infra.lock import LOCK, layer_requirements, lock_problems, write_lock

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
LAMBDAS = ROOT / "lambdas"
LAYER_SRC = ROOT / "layers" / "qrpro"

RUNTIME_VERSION = (3, 13)  # infra/constructs/functions.RUNTIME (a test ties them)
RUNTIME_PY = ".".join(map(str, RUNTIME_VERSION))
FUNCTIONS: tuple[str, ...] = (
    "api", "authorizer", "redirect", "scans", "compaction", "fanout", "mail", "events", "webhooks", "export",
    "expiry", "usagekeys",
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
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")

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


@cache
def bytecode_python() -> str | None:
    """An interpreter of the runtime's Python version to compile bytecode with, or None
    (``$QRPRO_RUNTIME_PYTHON``, else ``python3.13`` on the PATH)."""
    chosen = os.environ.get("QRPRO_RUNTIME_PYTHON")
    candidate = chosen or shutil.which(f"python{RUNTIME_PY}")
    if not candidate:
        return None
    out = subprocess.run([candidate, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                         text=True, check=False)
    if out.returncode == 0 and tuple(map(int, out.stdout.split())) == RUNTIME_VERSION:
        return candidate
    if chosen:
        raise RuntimeError(f"QRPRO_RUNTIME_PYTHON={chosen} is not a working Python {RUNTIME_PY}")
    return None  # e.g. a pyenv shim for a version that is not installed


def _bytecode_mode() -> str:
    python = bytecode_python()
    if python is None:
        if os.environ.get("QRPRO_REQUIRE_BYTECODE") == "1":
            raise RuntimeError(f"no Python {RUNTIME_PY} interpreter to compile the assets' bytecode with: "
                               "install one or set QRPRO_RUNTIME_PYTHON (QRPRO_REQUIRE_BYTECODE=0 ships source only)")
        return "source-only"
    return f"bytecode-{RUNTIME_PY}"


def compile_tree(tree: Path, prefix: str) -> None:
    """Bytecode for every module under ``tree`` (deployed at ``prefix``: tracebacks name the
    deployed paths), unless no interpreter of the runtime's version is available."""
    python = bytecode_python()
    if python is None:
        print(f"warning: {tree.relative_to(ROOT) if tree.is_relative_to(ROOT) else tree}: source only, no "
              f"Python {RUNTIME_PY} to compile it with; each cold start will compile it",
              file=sys.stderr)
        return
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                    "-s", str(tree), "-p", prefix, str(tree)], check=True)


def function_hash(fn: str) -> str:
    return _hash([LAMBDAS / "__init__.py", LAMBDAS / fn, *_extra_files(fn)], extra=("function", fn, _bytecode_mode()))


def layer_hash() -> str:
    return _hash([LAYER_SRC, LOCK], extra=("layer", *PIP_TARGET_ARGS, _bytecode_mode()))


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
    compile_tree(out, "/var/task")
    return out


def pip_command(target: Path, requirements: Path) -> list[str]:
    """Exactly the locked files: every one pinned and hash-checked, no resolution (``--no-deps``)."""
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--require-hashes", "--no-deps", *PIP_TARGET_ARGS,
            "--target", str(target), "-r", str(requirements)]


def deps_hash() -> str:
    return _hash([LOCK], extra=("deps", *PIP_TARGET_ARGS))


def build_deps(out: Path) -> Path:
    """``out/python/<deps>``: the locked wheels for aarch64 / cp313 (needs PyPI; cached by the lock's hash)."""
    shutil.rmtree(out, ignore_errors=True)
    target = out / "python"
    target.mkdir(parents=True)
    requirements = out / "requirements.txt"
    requirements.write_text(layer_requirements(), encoding="utf-8")
    subprocess.run(pip_command(target, requirements), check=True)
    requirements.unlink()
    for junk in ("bin", "share"):
        shutil.rmtree(target / junk, ignore_errors=True)
    return out


def build_layer(out: Path, deps: Path) -> Path:
    """``out/python/<deps>`` (copied from ``deps``) + ``out/python/qrpro``."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(deps, out)
    shutil.copytree(LAYER_SRC, out / "python" / "qrpro", ignore=_IGNORED)
    compile_tree(out, "/opt")
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
    parser.add_argument("--lock", action="store_true", help=f"re-resolve {LOCK.name} (uv) and exit")
    args = parser.parse_args(argv)
    if args.lock:
        print(f"wrote {write_lock().relative_to(ROOT)}")
        return 0
    problems = lock_problems()
    if problems:
        parser.exit(1, "\n".join(problems) + "\n")
    targets = args.targets or ["layer", *FUNCTIONS]
    for target in targets:
        path = ensure_built("layer") if target == "layer" else ensure_built("function", target)
        print(f"built {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
